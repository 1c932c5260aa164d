"""Independent reader for the MCAP export test: opens the file with
Foxglove's `mcap` library (which checks the CRCs it finds), decodes every
message with `mcap-ros2-support`'s CDR decoder from the ros2msg schemas in
the file, and prints one JSON object with what it read."""
import json
import sys
import zlib

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

path = sys.argv[1]
out = {"topics": {}, "messages": [], "statistics": None}
with open(path, "rb") as f:
    reader = make_reader(f, decoder_factories=[DecoderFactory()], validate_crcs=True)
    summary = reader.get_summary()
    if summary is not None and summary.statistics is not None:
        out["statistics"] = {
            "message_count": summary.statistics.message_count,
            "channel_message_counts": {str(k): v for k, v in summary.statistics.channel_message_counts.items()},
        }
    header = reader.get_header()
    out["profile"] = header.profile
    for schema, channel, message, decoded in reader.iter_decoded_messages():
        out["topics"][channel.topic] = schema.name
        value = decoded.data
        if hasattr(decoded, "format"):
            # An image: its format, stamp and a checksum of its bytes.
            stamp = decoded.header.stamp
            value = {"format": decoded.format, "frame_id": decoded.header.frame_id, "stamp_ns": stamp.sec * 1_000_000_000 + stamp.nanosec, "bytes": len(value), "crc32": zlib.crc32(bytes(value))}
        elif isinstance(value, (bytes, bytearray)):
            value = list(value)
        elif not isinstance(value, (bool, int, float, str)):
            value = [float(v) for v in value]
        out["messages"].append({"topic": channel.topic, "log_time": message.log_time, "sequence": message.sequence, "data": value})
print(json.dumps(out))
