"""A throwaway Redis for the benchmarks and the soak: Debian's redis-server on 127.0.0.1 and an
ephemeral port, nothing written to disk, and redis-cli to read what the replicas wrote."""
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, log_path):
        self.log = open(log_path, "w")
        for _ in range(20):
            self.port = free_port()
            self.proc = subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                 "--appendonly", "no"], stdout=self.log, stderr=subprocess.STDOUT)
            for _ in range(250):
                if self.proc.poll() is not None:
                    break
                if self.ping():
                    return
                time.sleep(0.02)
            self.proc.kill()  # the port was taken between free_port() and the bind: another one
            self.proc.wait()
        self.log.close()
        raise RuntimeError(f"redis-server did not start (see {log_path})")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def cli(self, *args):
        """A redis-cli command's output lines (one per value)."""
        out = subprocess.run(["redis-cli", "-p", str(self.port), *map(str, args)],
                             check=True, capture_output=True, text=True).stdout
        return out.splitlines()

    def usage(self, prefix):
        """{key id: [valid, refused]} summed over days, from the replicas' usage hashes."""
        found = {}
        for name in self.cli("--scan", "--pattern", f"{prefix}usage:*"):
            key_id = name[len(prefix) + len("usage:"):].rsplit(":", 1)[0]
            fields = self.cli("HGETALL", name)
            counts = dict(zip(fields[::2], map(int, fields[1::2])))
            total = found.setdefault(key_id, [0, 0])
            total[0] += counts.get("valid", 0)
            total[1] += counts.get("refused", 0)
        return found

    def credits_spent(self, prefix):
        """Credits spent, in all of the replicas' credit pools."""
        return sum(int(self.cli("GET", name)[0])
                   for name in self.cli("--scan", "--pattern", f"{prefix}credits:*"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()
