"""One router per page family: account, products, jobs, operators."""
