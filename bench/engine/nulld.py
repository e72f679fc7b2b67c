#!/usr/bin/env python3
"""bench/engine/nulld.py SOCKET — a do-nothing Docker API server on a unix
socket. It answers what `docker run [--rm|-d] IMAGE CMD` sends (_ping,
create, attach, wait, start) at once with canned replies, so the docker
CLI's own time is measured: the floor under any daemon (run.sh uses it)."""
import json, os, socket, sys, threading, re

SOCK = sys.argv[1]
CID = "0" * 64

def handle(conn):
    f = conn.makefile("rb")
    try:
        while True:
            line = f.readline()
            if not line:
                return
            method, path, _ = line.decode().split(" ", 2)
            headers = {}
            while True:
                h = f.readline().decode()
                if h in ("\r\n", "\n", ""):
                    break
                k, v = h.split(":", 1)
                headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length", "0"))
            if n:
                f.read(n)
            p = re.sub(r"^/v[0-9.]+", "", path).split("?")[0]
            common = "Api-Version: 1.43\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: nulld\r\n"
            if p == "/_ping":
                body = b"OK" if method != "HEAD" else b""
                conn.sendall(("HTTP/1.1 200 OK\r\n" + common + "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n").encode() + body)
            elif p == "/containers/create":
                body = json.dumps({"Id": CID, "Warnings": []}).encode()
                conn.sendall(("HTTP/1.1 201 Created\r\n" + common + "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)).encode() + body)
            elif p.endswith("/attach"):
                conn.sendall(("HTTP/1.1 101 UPGRADED\r\n" + common + "Content-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n").encode())
                # the stream ends when the (imaginary) container exits: at once
                conn.shutdown(socket.SHUT_WR)
                return
            elif p.endswith("/wait"):
                body = json.dumps({"StatusCode": 0, "Error": None}).encode()
                conn.sendall(("HTTP/1.1 200 OK\r\n" + common + "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)).encode() + body)
            elif p.endswith("/start"):
                conn.sendall(("HTTP/1.1 204 No Content\r\n" + common + "\r\n").encode())
            else:
                body = json.dumps({"message": "nulld: " + p}).encode()
                conn.sendall(("HTTP/1.1 404 Not Found\r\n" + common + "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)).encode() + body)
    except Exception:
        pass
    finally:
        try:
            conn.close()
        except Exception:
            pass

if os.path.exists(SOCK):
    os.unlink(SOCK)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(SOCK)
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
