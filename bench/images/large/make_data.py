"""Write DATA_MB megabytes of application data under DIR, the same bytes on every run.

    python3 make_data.py DIR DATA_MB

About a third is many small files (a few KB each, text and binary, in a few hundred
directories: the inode-heavy part), the rest a few big ones: already-compressed media (random
bytes), a text log and a database-like file of fixed-size pages.
"""

import os
import random
import sys

MB = 1000 * 1000


def text_pool(rng, size):
    """Words of a made-up language: text that compresses about as well as source or docs."""
    vocabulary = ["".join(rng.choices("etaoinshrdlcumwfgypbvkjxqz", k=rng.randint(2, 10)))
                  for _word in range(5000)]
    words = rng.choices(vocabulary, k=size // 6)
    lines = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
    return "\n".join(lines).encode("ascii")[:size]


def small_files(rng, top, total, pool):
    written = count = 0
    while written < total:
        directory = os.path.join(top, "small", "d%03d" % (count // 100))
        if count % 100 == 0:
            os.makedirs(directory)
        size = min(int(rng.lognormvariate(8.6, 1.0)), 256 * 1024)
        if rng.random() < 0.7:
            start = rng.randrange(len(pool) - size)
            name, data = "f%05d.txt" % count, pool[start:start + size]
        else:
            name, data = "f%05d.bin" % count, rng.randbytes(size)
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(data)
        written += size
        count += 1
    return count


def media(rng, path, total):
    with open(path, "wb") as handle:
        for _megabyte in range(total // MB):
            handle.write(rng.randbytes(MB))


def log(rng, path, total):
    levels = ["INFO"] * 8 + ["WARN", "ERROR"]
    paths = ["/api/v1/items/%d", "/api/v1/users/%d/orders", "/static/img/%d.png", "/health", "/login?next=%d"]
    written, second = 0, 1767225600
    with open(path, "w", encoding="ascii") as handle:
        while written < total:
            lines = []
            for _line in range(1000):
                second += rng.randint(0, 2)
                template = rng.choice(paths)
                lines.append("%d.%03d %s [worker-%d] id=%08x %s %s status=%d ms=%d\n" % (
                    second, rng.randint(0, 999), rng.choice(levels), rng.randint(1, 16), rng.getrandbits(32),
                    rng.choice(("GET", "GET", "POST")), template % rng.randint(1, 99999) if "%d" in template
                    else template, rng.choice((200, 200, 200, 201, 304, 404, 500)), rng.randint(1, 900)))
            chunk = "".join(lines)
            handle.write(chunk)
            written += len(chunk)


def database(rng, path, total):
    """Pages of 4 KiB: a header, a few hundred bytes of records, the rest zeros (free space)."""
    with open(path, "wb") as handle:
        for page in range(total // 4096):
            records = b"".join(b"%08d|%s|%d;" % (rng.getrandbits(24), rng.randbytes(6).hex().encode(), rng.randint(0, 10 ** 6))
                               for _record in range(rng.randint(4, 40)))
            body = (b"PAGE%08d" % page + records)[:4096]
            handle.write(body + bytes(4096 - len(body)))


def main():
    top, data_mb = sys.argv[1], int(sys.argv[2])
    total = data_mb * MB
    rng = random.Random(20261129)
    os.makedirs(os.path.join(top, "big"))
    pool = text_pool(rng, 8 * MB)
    count = small_files(rng, top, total * 35 // 100, pool)
    media(rng, os.path.join(top, "big", "media-1.bin"), total * 18 // 100)
    media(rng, os.path.join(top, "big", "media-2.bin"), total * 12 // 100)
    log(rng, os.path.join(top, "big", "app.log"), total * 25 // 100)
    database(rng, os.path.join(top, "big", "store.db"), total * 10 // 100)
    print("%d small files and 4 big ones, %d MB" % (count, data_mb))


if __name__ == "__main__":
    main()
