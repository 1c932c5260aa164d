//! The QoS profiles of rrl's own topics, one place for all.

use r2r::QosProfile;

/// Every transition of an actor's stream is kept until the learner has it.
pub fn transitions() -> QosProfile {
    QosProfile::default().reliable().keep_last(10_000)
}

/// Transient-local: an actor that starts late gets the newest weights at once.
pub fn weights() -> QosProfile {
    QosProfile::default().reliable().transient_local().keep_last(1)
}

pub fn acks() -> QosProfile {
    QosProfile::default().reliable()
}

/// Lockstep requests and replies: one in flight per actor, resent until answered.
pub fn lockstep() -> QosProfile {
    QosProfile::default().reliable().keep_last(100)
}

/// The payload type of every rrl wire message.
pub type Bytes = r2r::std_msgs::msg::UInt8MultiArray;

pub fn bytes_message(data: Vec<u8>) -> Bytes {
    Bytes { data, ..Default::default() }
}
