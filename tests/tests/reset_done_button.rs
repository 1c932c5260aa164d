//! The operator's reset-done key or button closes the human reset window
//! over DDS (its own ROS domain, loopback).

use std::time::{Duration, Instant};

use ros_edge::reset_window::{ResetDoneButton, ResetWindow};

#[test]
fn a_press_of_the_reset_done_button_closes_an_open_window() {
    tests::isolate_ros_domain();
    let window = ResetWindow::start("button_test").unwrap();
    let button = ResetDoneButton::start("button_test").unwrap();
    let started = Instant::now();
    let mut last_press: Option<Instant> = None;
    let result = window.wait(Duration::from_secs(20), || -> Result<(), ()> {
        if last_press.is_none_or(|t| t.elapsed() > Duration::from_millis(200)) {
            button.press();
            last_press = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(10));
        Ok(())
    });
    assert_eq!(result, Ok(Ok(())), "after {:?}", started.elapsed());
}

/// A gamepad's reset button (4) closes the window on its press, while the
/// operator is not polled (the robot waits in its reset).
#[test]
fn the_gamepads_reset_button_closes_an_open_window() {
    tests::isolate_ros_domain();
    let window = ResetWindow::start("joy_button_test").unwrap();
    let _operator = ros_edge::joy::JoyOperator::start("joy_button_test", "/joy_button_test/joy", 4, ros_edge::joy::JoyMapping::Tool).unwrap();
    let ctx = r2r::Context::create().unwrap();
    let mut node = r2r::Node::create(ctx, "gamepad", "").unwrap();
    let joy = node.create_publisher::<r2r::sensor_msgs::msg::Joy>("/joy_button_test/joy", r2r::QosProfile::default()).unwrap();
    let mut sent: Option<Instant> = None;
    let mut held = false;
    let result = window.wait(Duration::from_secs(20), || -> Result<(), ()> {
        // Press and release, again and again, until the window closes.
        if sent.is_none_or(|t| t.elapsed() > Duration::from_millis(100)) {
            held = !held;
            let mut buttons = vec![0; 6];
            buttons[ros_edge::joy::RESET_DONE_BUTTON] = i32::from(held);
            joy.publish(&r2r::sensor_msgs::msg::Joy { axes: vec![0.0; 6], buttons, ..Default::default() }).unwrap();
            sent = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(10));
        Ok(())
    });
    assert_eq!(result, Ok(Ok(())));
}
