"""An emulated ros2_control arm for tests (the far end of the topics, like
a device emulator): publishes sensor_msgs/JointState for joints `a`, `b`
at 100 Hz and moves each joint toward the last command received on
`forward_position_controller/commands` at up to 1 rad/s. With CONTACT_AT,
it also publishes geometry_msgs/WrenchStamped on `/external_wrench`: a 5 N
push while joint `a` is below CONTACT_AT rad, 50 N once it has passed it
(the hand pressing on something). With --silent=START:DURATION it stops
publishing joint states for DURATION seconds, START seconds after its
first command arrives (a robot whose driver stalls mid-run).
Usage: ros2_control_arm.py SECONDS [CONTACT_AT] [--silent=START:DURATION]"""
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from geometry_msgs.msg import WrenchStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray


def main() -> int:
    rclpy.init()
    node = Node("emulated_ros2_control_arm")
    position = [0.1, -0.2]
    target = list(position)
    publisher = node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    contact_at = float(args[1]) if len(args) > 1 else None
    silent = next(([float(v) for v in f.split("=", 1)[1].split(":")] for f in flags if f.startswith("--silent=")), None)
    first_command = []
    wrench_publisher = node.create_publisher(WrenchStamped, "/external_wrench", qos_profile_sensor_data)

    def on_command(msg: Float64MultiArray) -> None:
        if len(msg.data) == 2:
            target[:] = list(msg.data)
            if not first_command:
                first_command.append(time.monotonic())

    node.create_subscription(Float64MultiArray, "/forward_position_controller/commands", on_command, 10)

    def tick() -> None:
        for j in range(2):
            position[j] += max(-0.01, min(0.01, target[j] - position[j]))
        if silent is not None and first_command:
            since = time.monotonic() - first_command[0]
            if silent[0] <= since < silent[0] + silent[1]:
                return
        msg = JointState()
        msg.header.stamp = node.get_clock().now().to_msg()
        # Published in another order than the driver's: it must reorder by name.
        msg.name = ["b", "a"]
        msg.position = [position[1], position[0]]
        publisher.publish(msg)
        if contact_at is not None:
            wrench = WrenchStamped()
            wrench.header.stamp = msg.header.stamp
            wrench.wrench.force.z = -50.0 if position[0] > contact_at else -5.0
            wrench_publisher.publish(wrench)

    node.create_timer(0.01, tick)
    end = time.monotonic() + float(args[0])
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.01)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
