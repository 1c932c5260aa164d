"""Independent ROS 2 peer of the serial unplug test, beside `rrl driver`.

Prints "ready" once the arm's joint states arrive. From then on it counts
the node's "held (Disconnected)" verdicts. When the test writes
"replugged" on stdin, the peer waits for joint states from the arm that
came back, then commands the first joint 0.2 rad away from where that arm
is and checks that it gets there while the other joints stay put.
Prints one JSON line at the end; exit 0 when the arm tracked.
Usage: unplug_peer.py NAMESPACE"""
import json
import queue
import sys
import threading
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String


def main() -> int:
    namespace = sys.argv[1]
    rclpy.init()
    node = Node("rrl_unplug_peer")
    latest = {}
    held = {"disconnected": 0}

    def on_verdict(message):
        if "held (Disconnected)" in message.data:
            held["disconnected"] += 1

    node.create_subscription(JointState, f"/{namespace}/joint_states", lambda m: latest.update(msg=m), qos_profile_sensor_data)
    node.create_subscription(String, f"/{namespace}/safety/verdicts", on_verdict, 100)
    commands = node.create_publisher(Float64MultiArray, f"/{namespace}/joint_commands", 10)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in sys.stdin], daemon=True).start()

    def spin_until(done, seconds):
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.02)
        return done()

    result = {"ok": False}
    if not spin_until(lambda: "msg" in latest, 60):
        result["error"] = "no joint_states"
    else:
        print("ready", flush=True)
        spin_until(lambda: not lines.empty(), 300)
        result["said"] = lines.get() if not lines.empty() else None
        result["held_disconnected"] = held["disconnected"]
        latest.clear()
        # Joint states again: the node reconnected to the arm that came back.
        if not spin_until(lambda: "msg" in latest, 60):
            result["error"] = "no joint_states after the arm came back"
        else:
            start = list(latest["msg"].position)
            goal = list(start)
            goal[0] += 0.2

            def tracked():
                commands.publish(Float64MultiArray(data=goal))
                now = list(latest["msg"].position)
                return abs(now[0] - goal[0]) < 0.01 and all(abs(a - b) < 0.01 for a, b in zip(now[1:], start[1:]))

            result["tracked"] = spin_until(tracked, 30)
            result["start"], result["reached"] = start, list(latest["msg"].position)
            result["ok"] = result["tracked"]
    print(json.dumps(result), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
