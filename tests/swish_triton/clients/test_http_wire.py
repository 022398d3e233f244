"""The HTTP/1.1 wire of the concurrency driver (swish_triton.clients.http_wire): chunked answers, a silent server,
and timeouts per wait."""

from __future__ import annotations

import pytest


def test_http_driver_reads_chunked_answers() -> None:
    """Triton answers with Content-Length; a proxy in front of it may answer in chunks, which the driver reads too."""
    from swish_triton.clients.http_wire import _chunked_end, _dechunk

    body = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n"
    for trailer in (b"\r\n", b"Expires: never\r\n\r\n"):
        answer = bytearray(b"HEAD" + body + trailer + b"NEXT")
        assert _chunked_end(answer, 4, len(answer)) == len(answer) - 4
        for short in range(4, len(answer) - 4):
            assert _chunked_end(answer, 4, short) == -1
        assert _dechunk(bytes(answer[4:-4])) == b"Wikipedia in \r\n\r\nchunks."


def test_http_driver_gives_up_on_a_server_that_never_answers() -> None:
    """A listener that accepts and stays silent: the round trip ends with TimeoutError, and the connection is
    opened again for the next request."""
    import socket

    from swish_triton.clients.http_wire import HttpConnection

    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(5)
        connection = HttpConnection(f"127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.2)
        for _ in range(2):
            with pytest.raises(TimeoutError, match="no progress"):
                connection.exchange(b"POST /v2/models/swish_py/infer HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            accepted, _ = silent.accept()  # one connection per attempt
            accepted.close()
        connection.close()


def test_http_driver_timeout_is_per_wait_not_per_connection() -> None:
    """Waits that add up to more than the timeout on one connection are no timeout (libev timers resume with what
    is left after a stop, so one reused timer expired once a connection had waited 60 s in all)."""
    import socket
    import threading
    import time

    from swish_triton.clients.http_wire import HttpConnection

    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    request = b"POST /v2/models/swish_py/infer HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def slow_server() -> None:
            conn, _ = listener.accept()
            with conn:
                for _ in range(6):
                    conn.recv(65536)
                    time.sleep(0.1)
                    conn.sendall(answer)

        server = threading.Thread(target=slow_server, daemon=True)
        server.start()
        connection = HttpConnection(f"127.0.0.1:{listener.getsockname()[1]}", timeout_s=0.3)
        for _ in range(6):  # 6 waits of 0.1 s: twice the timeout in all
            assert connection.exchange(request).status == 200
        connection.close()
        server.join(timeout=10)
