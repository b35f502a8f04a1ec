"""A host process (run it as nobody) handing the jail a descriptor of a host directory over an abstract socket.

usage: fd_sender.py serve NAME DIR    listen on @NAME, send DIR's descriptor to whoever connects
       fd_sender.py connect NAME DIR  connect to @NAME (the jail listens), send DIR's descriptor
       fd_sender.py hold NAME SECONDS connect to @NAME, take the descriptor the jail gives, hold it
"""
import os
import socket
import sys
import time

how, name, argument = sys.argv[1:4]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
if how == "hold":
    for _attempt in range(100):
        try:
            sock.connect("\0" + name)
            break
        except OSError:
            time.sleep(0.1)
    _data, fds, _flags, _address = socket.recv_fds(sock, 1, 1)
    time.sleep(float(argument))
    sys.exit(0)
fd = os.open(argument, os.O_RDONLY | os.O_DIRECTORY)
if how == "serve":
    sock.bind("\0" + name)
    sock.listen(1)
    sock.settimeout(20)
    conn, _address = sock.accept()
else:
    for _attempt in range(100):  # until the jail listens
        try:
            sock.connect("\0" + name)
            break
        except OSError:
            time.sleep(0.1)
    conn = sock
socket.send_fds(conn, [b"x"], [fd])
time.sleep(1)
