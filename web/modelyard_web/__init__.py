"""End-user and operator web pages (server-rendered), served by the platform app."""
