"""The application's delegated-auth endpoint for the benches' `delegated` targets.

Usage: python3 benches/auth_app.py PORT. Answers every GET: 200 {"user_id": 12} for demo-key,
401 for anything else. The gateway's cache keeps the answer, so this is asked once per TTL.
"""
import http.server
import sys


class Auth(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        ok = self.headers.get("x-presign-api-key") == "demo-key"
        body = b'{"user_id": 12, "key_id": "demo"}' if ok else b"{}"
        self.send_response(200 if ok else 401)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Auth).serve_forever()
