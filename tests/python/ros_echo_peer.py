"""An independent ROS 2 peer for the r2r smoke test: an rclpy node that
answers every std_msgs/String on `to_py` with `echo:<data>` on `from_py`, and
announces itself on `from_py` until it has echoed something."""
import sys

import rclpy
from rclpy.node import Node
from std_msgs.msg import String


def main() -> int:
    rclpy.init()
    node = Node("rrl_rclpy_echo_peer")
    pub = node.create_publisher(String, "/rrl_smoke/from_py", 10)
    echoed = []

    def on_message(msg: String) -> None:
        echoed.append(msg.data)
        pub.publish(String(data="echo:" + msg.data))

    node.create_subscription(String, "/rrl_smoke/to_py", on_message, 10)

    def announce() -> None:
        if not echoed:
            pub.publish(String(data="hello from rclpy"))

    node.create_timer(0.05, announce)
    deadline = node.get_clock().now().nanoseconds + int(float(sys.argv[1]) * 1e9)
    while rclpy.ok() and node.get_clock().now().nanoseconds < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
