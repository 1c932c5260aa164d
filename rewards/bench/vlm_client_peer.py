"""Peer for `rrl bench reward`: the VLM progress client a Python stack would
use, with the standard library only (zlib PNG, base64, json, urllib) and a
thread per concurrent request, as many reward wrappers do. For each frame it
sends the same two requests as rrl's critic (progress delta against the
previous frame, then completion) to the same OpenAI-compatible endpoint.
Modes: `encode ROUNDS` (the client's own work per frame: PNG, base64,
JSON), `sequential FRAMES` (latency per frame, one at a time) and
`throughput SECONDS CONCURRENCY` (frames scored per second).
Usage: vlm_client_peer.py URL TASK SIDE MODE ..."""
import base64
import json
import re
import statistics
import struct
import sys
import threading
import time
import urllib.request
import zlib

SYSTEM = "You judge a robot's progress on a task from camera images."
PROGRESS = "Task: {task}. The first image shows the scene earlier, the second now. By how many percentage points did the task progress from the first image to the second? Answer with one signed number between -100 and 100."
DONE = "Task: {task}. Is the task complete in this image? Answer with one number from 0 (certainly not) to 100 (certainly)."


def png(side, rgb):
    raw = b"".join(b"\x00" + rgb[y * side * 3:(y + 1) * side * 3] for y in range(side))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def make_frame(side, k):
    # A textured picture (gradients and a product term), not a solid colour: compresses like a camera frame does.
    return bytes(v for y in range(side) for x in range(side) for v in ((2 * x + 37 * k) & 255, (2 * y) & 255, (x * y + k) & 255))


FRAMES = {}


def frame(side, k):
    # Eight distinct frames, made before any timing.
    return FRAMES[(side, k % 8)]


def ask(url, task_text, images, side):
    content = [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png(side, im)).decode()}} for im in images]
    content.append({"type": "text", "text": task_text})
    body = json.dumps({"model": "emulated-vlm", "temperature": 0.0, "max_tokens": 16, "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", "Authorization": "Bearer test-key"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        text = json.loads(answer.read())["choices"][0]["message"]["content"]
    return float(re.search(r"[-+]?\d+(\.\d+)?", text).group(0))


def assess(url, task, side, previous, current):
    ask(url, PROGRESS.format(task=task), [previous, current], side)
    ask(url, DONE.format(task=task), [current], side)


def main():
    url, task, side, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    for k in range(8):
        FRAMES[(side, k)] = make_frame(side, k)
    if mode == "encode":
        rounds = int(sys.argv[5])
        start = time.perf_counter()
        for k in range(rounds):
            previous, current = frame(side, k), frame(side, k + 1)
            urls = ["data:image/png;base64," + base64.b64encode(png(side, im)).decode() for im in (previous, current, current)]
            for images in (urls[:2], urls[2:]):
                content = [{"type": "image_url", "image_url": {"url": u}} for u in images]
                content.append({"type": "text", "text": task})
                json.dumps({"model": "emulated-vlm", "messages": [{"role": "user", "content": content}]})
        print(json.dumps({"encode_ms_per_frame": 1e3 * (time.perf_counter() - start) / rounds}))
    elif mode == "sequential":
        latencies = []
        for k in range(1, int(sys.argv[5]) + 1):
            start = time.perf_counter()
            assess(url, task, side, frame(side, k - 1), frame(side, k))
            latencies.append(time.perf_counter() - start)
        print(json.dumps({"median_latency_s": statistics.median(latencies), "frames": len(latencies)}))
    else:
        seconds, concurrency = float(sys.argv[5]), int(sys.argv[6])
        done = [0]
        lock = threading.Lock()
        end = time.perf_counter() + seconds

        def worker(w):
            k = w
            while time.perf_counter() < end:
                assess(url, task, side, frame(side, k), frame(side, k + 1))
                if time.perf_counter() <= end:
                    with lock:
                        done[0] += 1
                k += concurrency

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(json.dumps({"frames_per_s": done[0] / seconds, "frames": done[0]}))


if __name__ == "__main__":
    main()
