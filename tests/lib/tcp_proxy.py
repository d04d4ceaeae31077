"""A TCP proxy in front of a real server, for tests of outages: while `up`
it forwards each connection to the target; `down()` cuts every forwarded
connection and from then on accepts and closes at once (a database that
refuses its clients), counting each attempt. Runs on its own threads."""
import socket
import threading

from server import free_port


class TcpProxy:
    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.accepted = 0          # every connection attempt, up or down
        self.refused = 0           # attempts while down
        self._up = True
        self._lock = threading.Lock()
        self._pipes = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(256)
        self._stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                up = self._up
                if not up:
                    self.refused += 1
            if not up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pipes.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def down(self):
        with self._lock:
            self._up = False
            pipes, self._pipes = self._pipes, []
        for a, b in pipes:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass

    def up(self):
        with self._lock:
            self._up = True

    def refused_count(self):
        with self._lock:
            return self.refused

    def stop(self):
        self._stopping = True
        self.down()
        self._listener.close()
