"""`cc_capture.loopback`: the one HTTP server base of the recorder and the test doubles binds loopback
only, answers there while used, and is gone after."""

import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest

from cc_capture.loopback import LoopbackServer, NotLoopback


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("host", ["0.0.0.0", "", "192.0.2.1", "localhost", "::", "::1"])
def test_anything_but_an_ipv4_loopback_address_is_refused(host):
    with pytest.raises(NotLoopback, match="is not an IPv4 loopback address .*: cc-capture listens on this machine only"):
        LoopbackServer(Hello, host)


def test_it_answers_on_loopback_while_used_and_not_after():
    with LoopbackServer(Hello) as server:
        assert server.server.server_address[0] == "127.0.0.1" and server.url == f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(server.url + "/x", timeout=10) as answer:
            assert answer.read() == b"hello /x"
    with pytest.raises(OSError):  # the port is closed: the connection is refused
        urllib.request.urlopen(server.url + "/x", timeout=10)

