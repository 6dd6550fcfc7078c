#!/usr/bin/env python3
"""A stand-in for systemd-journald's native socket, for tests that cannot read a real journal.

    fake_journald.py ENTRIES.jsonl STDERR_FILE -- COMMAND...

Run inside a private mount namespace (`unshare --mount --propagation private`): it mounts a tmpfs
on /run, binds /run/systemd/journal/socket (where sd_journal_send writes), starts COMMAND with
stderr to STDERR_FILE and JOURNAL_STREAM naming that file (as systemd does for a service whose
stderr goes to the journal), collects every datagram until COMMAND exits, writes one JSON object
per entry ({FIELD: value}) to ENTRIES.jsonl, and exits with COMMAND's exit code.

The native protocol (systemd's "Native Journal Protocol"): a datagram holds fields, each either
`KEY=value\\n` or, for values with newlines, `KEY\\n` + 64-bit little-endian size + value + `\\n`.
"""

import json
import os
import socket
import struct
import subprocess
import sys


def parse(datagram):
    fields = {}
    i = 0
    while i < len(datagram):
        nl = datagram.index(b"\n", i)
        line = datagram[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:
            key = line
            (size,) = struct.unpack("<Q", datagram[nl + 1:nl + 9])
            value = datagram[nl + 9:nl + 9 + size]
            i = nl + 9 + size + 1
        fields[key.decode()] = value.decode("utf-8", "replace")
    return fields


def main():
    entries_path, stderr_path = sys.argv[1], sys.argv[2]
    command = sys.argv[sys.argv.index("--") + 1:]
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
    os.makedirs("/run/systemd/journal")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/run/systemd/journal/socket")
    sock.settimeout(0.05)
    with open(stderr_path, "wb") as err:
        st = os.fstat(err.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=err, env=env)
    entries = []
    while True:
        try:
            entries.append(parse(sock.recv(1 << 20)))
            continue
        except socket.timeout:
            pass
        if child.poll() is not None:
            break
    with open(entries_path, "w") as out:
        for e in entries:
            out.write(json.dumps(e) + "\n")
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
