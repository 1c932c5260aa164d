"""Independent reader for the rosbag2 export test: opens the bag folder the
way rosbag2 does (metadata.yaml, then the MCAP storage file it names) with
the `rosbags` library, deserializes every message with its ROS 2 Humble
type store, and prints one JSON object with what it read."""
import json
import sys
from pathlib import Path

from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

store = get_typestore(Stores.ROS2_HUMBLE)
out = {"topics": {}, "messages": []}
with Reader(Path(sys.argv[1])) as reader:
    out["message_count"] = reader.message_count
    out["start_time"] = reader.start_time
    out["end_time"] = reader.end_time
    for connection in reader.connections:
        out["topics"][connection.topic] = {"type": connection.msgtype, "count": connection.msgcount}
    for connection, timestamp, raw in reader.messages():
        data = store.deserialize_cdr(raw, connection.msgtype).data
        if hasattr(data, "tolist"):
            data = data.tolist()
        out["messages"].append({"topic": connection.topic, "log_time": timestamp, "data": data})
print(json.dumps(out))
