# SPDX-License-Identifier: GPL-3.0-or-later
"""A tiny web app for the demo container: it answers every GET with a greeting."""
import http.server
import os
import socket


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('Hello from %s\n' % socket.gethostname()).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == '__main__':
    http.server.HTTPServer(('', int(os.environ.get('APP_PORT', '8080'))), Hello).serve_forever()
