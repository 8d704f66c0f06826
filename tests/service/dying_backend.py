"""An OpenAI-compatible server that dies mid-request: what a crashed model server looks like.

``GET /v1/models`` answers (so ``yard models add`` accepts it); ``POST /v1/chat/completions``
reads the whole request, then the process SIGKILLs itself before answering, so the caller's
connection drops after its request was sent.  Run as its own process:

    python tests/service/dying_backend.py PORT
"""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

MODELS = json.dumps({"object": "list", "data": [{"id": "dying", "object": "model"}]}).encode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200 if self.path.rstrip("/").endswith("/models") else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(MODELS)))
        self.end_headers()
        self.wfile.write(MODELS)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
