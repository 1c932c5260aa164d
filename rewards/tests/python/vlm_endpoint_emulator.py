"""Device emulator for the VLM progress critic's tests: an OpenAI-compatible
chat-completions server on 127.0.0.1 (what vLLM, SGLang and Ollama serve)
standing in for a vision-language model. It checks each request the way a
server would (model, messages, base64 PNG data URLs, which it decodes with
Python's zlib, verifying every PNG chunk CRC), and answers from the images:
the progress delta is the change of the mean red level between the last two
images, in percentage points; the done answer is the red level of the single
image. Modes by task text: "garble" answers without a number, "slow" answers
after 3 s, "stalled" after 120 s, "leisurely" after 0.2 s. Prints its port on the first line, then serves until killed.
With --tls=CERT:KEY it serves https with that certificate chain and key.
Usage: vlm_endpoint_emulator.py [PORT] [--tls=CERT:KEY] (default port: a
free one; a given one lets a test restart a killed endpoint where its
clients expect it)."""
import base64
import ssl
import json
import struct
import sys
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def decode_png(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", None, None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 2), "expected 8-bit RGB"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    row = 1 + 3 * width
    assert len(raw) == row * height, "wrong image data size"
    reds = [raw[r * row + 1 + 3 * x] for r in range(height) for x in range(width)]
    return sum(reds) / len(reds)


class Handler(BaseHTTPRequestHandler):
    requests = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        try:
            assert self.path == "/v1/chat/completions", f"unexpected path {self.path}"
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert request["model"] == "emulated-vlm", "wrong model"
            assert self.headers.get("Authorization") == "Bearer test-key", "missing bearer token"
            user = request["messages"][-1]
            assert user["role"] == "user"
            text = [c["text"] for c in user["content"] if c["type"] == "text"][0]
            reds = []
            for c in user["content"]:
                if c["type"] == "image_url":
                    url = c["image_url"]["url"]
                    assert url.startswith("data:image/png;base64,"), "not a PNG data URL"
                    reds.append(decode_png(base64.b64decode(url.split(",", 1)[1])))
            if "slow" in text:
                time.sleep(3)
            if "stalled" in text:
                time.sleep(120)
            if "leisurely" in text:
                time.sleep(0.2)
            if "garble" in text:
                answer = "I cannot tell from these pictures."
            elif "progress" in text:
                answer = f"Progress delta: {100.0 * (reds[-1] - reds[-2]) / 255.0:+.1f}"
            else:
                answer = f"{100.0 * reds[-1] / 255.0:.1f}"
            body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}], "images_seen": len(reds)}).encode()
            self.send_response(200)
        except Exception as e:  # a malformed request is a 400 naming the problem
            body = json.dumps({"error": str(e)}).encode()
            self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ports = [a for a in sys.argv[1:] if not a.startswith("--")]
tls = next((a.split("=", 1)[1].split(":") for a in sys.argv[1:] if a.startswith("--tls=")), None)
server = ThreadingHTTPServer(("127.0.0.1", int(ports[0]) if ports else 0), Handler)
if tls is not None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls[0], tls[1])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
