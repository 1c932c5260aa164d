//! The one paced loop of the stack: a period, a clock to wait on, and the
//! deadline of the next tick. A loop calls `wait` once per tick; ticks stay
//! on a fixed grid while they fit in the period, and a tick that overran
//! re-anchors the grid at now instead of bursting to catch up (a robot
//! wants fresh commands on time, not a backlog replayed fast).
//!
//! Time comes from an injectable clock: the system clock sleeps for real,
//! a `ManualClock` jumps to each deadline, so tests run paced code without
//! waiting. No allocation, lock or system call beyond the sleep per tick.

use std::time::Duration;

use rrl_types::clock::SleepUntil;
use rrl_types::Timestamp;

/// How the wait for a tick went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Waited until the deadline (or met it exactly).
    OnTime,
    /// The deadline had passed by `late` already; the grid now starts
    /// from this moment.
    Overrun { late: Duration },
}

/// Waits for the ticks of a loop with a fixed period.
#[derive(Debug)]
pub struct Pacer<C> {
    clock: C,
    period_nanos: u64,
    /// When the current tick was due: the next is one period on.
    anchor: Timestamp,
}

impl<C: SleepUntil> Pacer<C> {
    /// A pacer whose first tick is now: the first `wait` returns one period
    /// after this call. A zero period never waits.
    pub fn new(period: Duration, clock: C) -> Pacer<C> {
        let anchor = clock.now();
        Pacer { clock, period_nanos: u64::try_from(period.as_nanos()).unwrap_or(u64::MAX), anchor }
    }

    /// A pacer for `rate_hz` ticks per second.
    pub fn at_rate(rate_hz: f64, clock: C) -> Pacer<C> {
        Pacer::new(Duration::from_secs_f64(1.0 / rate_hz), clock)
    }

    /// Waits until the next tick is due and returns with the tick started.
    pub fn wait(&mut self) -> Tick {
        let now = self.clock.now();
        let due = self.anchor.plus_nanos(self.period_nanos);
        if due >= now {
            // A clock stepped back would put the deadline more than a period
            // away; a tick never waits longer than one period.
            let due = due.min(now.plus_nanos(self.period_nanos));
            self.clock.sleep_until(due);
            self.anchor = due;
            Tick::OnTime
        } else {
            // Behind (a slow tick): start the next one now, not a burst of catch-ups.
            self.anchor = now;
            Tick::Overrun { late: Duration::from_nanos(now.nanos_since(due)) }
        }
    }

    /// Like `wait`, but a tick that overran keeps the grid: the ticks it
    /// missed follow at once. For a simulation paced to the wall clock,
    /// whose time advances one period per tick and must keep up with the
    /// wall clock its peers read; a real robot's loop uses `wait`.
    pub fn wait_catching_up(&mut self) -> Tick {
        let now = self.clock.now();
        let due = self.anchor.plus_nanos(self.period_nanos);
        self.anchor = due;
        if due >= now {
            self.clock.sleep_until(due.min(now.plus_nanos(self.period_nanos)));
            Tick::OnTime
        } else {
            Tick::Overrun { late: Duration::from_nanos(now.nanos_since(due)) }
        }
    }

    /// Starts the grid over from now, after a pause the loop chose (the
    /// next `wait` returns one period from now).
    pub fn reanchor(&mut self) {
        self.anchor = self.clock.now();
    }

    /// When the next tick is due.
    pub fn next_deadline(&self) -> Timestamp {
        self.anchor.plus_nanos(self.period_nanos)
    }

    pub fn period(&self) -> Duration {
        Duration::from_nanos(self.period_nanos)
    }

    /// The clock the pacer waits on (for stamping the tick's work).
    pub fn clock(&self) -> &C {
        &self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rrl_types::{Clock, ManualClock, SystemClock};

    const MS: u64 = 1_000_000;

    #[test]
    fn catching_up_keeps_the_grid_after_an_overrun() {
        let clock = ManualClock::new(Timestamp(0));
        let mut pacer = Pacer::new(Duration::from_millis(10), &clock);
        pacer.wait_catching_up();
        // A tick of 25 ms: the 20 and 30 ms ticks follow at once, then the grid waits again.
        clock.advance_nanos(25 * MS);
        assert_eq!(pacer.wait_catching_up(), Tick::Overrun { late: Duration::from_millis(15) });
        assert_eq!(pacer.wait_catching_up(), Tick::Overrun { late: Duration::from_millis(5) });
        assert_eq!(clock.now(), Timestamp(35 * MS), "missed ticks follow without waiting");
        assert_eq!(pacer.wait_catching_up(), Tick::OnTime);
        assert_eq!(clock.now(), Timestamp(40 * MS));
    }

    #[test]
    fn ticks_land_on_a_fixed_grid_whatever_each_tick_takes() {
        let clock = ManualClock::new(Timestamp(1_000 * MS));
        let mut pacer = Pacer::new(Duration::from_millis(10), &clock);
        assert_eq!(pacer.wait(), Tick::OnTime);
        assert_eq!(clock.now(), Timestamp(1_010 * MS));
        // Work of 3 ms, then 9.5 ms: the deadlines do not move with it.
        clock.advance_nanos(3 * MS);
        assert_eq!(pacer.wait(), Tick::OnTime);
        assert_eq!(clock.now(), Timestamp(1_020 * MS));
        clock.advance_nanos(9 * MS + MS / 2);
        assert_eq!(pacer.wait(), Tick::OnTime);
        assert_eq!(clock.now(), Timestamp(1_030 * MS));
        assert_eq!(pacer.next_deadline(), Timestamp(1_040 * MS));
        // Work that ends exactly at the deadline is on time, and waits no more.
        clock.advance_nanos(10 * MS);
        assert_eq!(pacer.wait(), Tick::OnTime);
        assert_eq!(clock.now(), Timestamp(1_040 * MS));
    }

    #[test]
    fn an_overrun_reanchors_at_now_instead_of_bursting_to_catch_up() {
        let clock = ManualClock::new(Timestamp(0));
        let mut pacer = Pacer::new(Duration::from_millis(10), &clock);
        pacer.wait();
        // A tick of 25 ms: its deadline (20 ms) passed 15 ms ago.
        clock.advance_nanos(25 * MS);
        assert_eq!(pacer.wait(), Tick::Overrun { late: Duration::from_millis(15) });
        assert_eq!(clock.now(), Timestamp(35 * MS), "an overrun does not wait");
        // The grid starts at 35 ms: the next tick is a whole period later,
        // not at 40 ms (and no ticks are run back to back to catch up).
        assert_eq!(pacer.wait(), Tick::OnTime);
        assert_eq!(clock.now(), Timestamp(45 * MS));
        assert_eq!(pacer.wait(), Tick::OnTime);
        assert_eq!(clock.now(), Timestamp(55 * MS));
    }

    #[test]
    fn a_reanchor_or_a_clock_stepped_back_waits_one_period_at_most() {
        let clock = ManualClock::new(Timestamp(100 * MS));
        let mut pacer = Pacer::new(Duration::from_millis(10), &clock);
        pacer.wait();
        // A pause the loop chose: the grid starts over from its end.
        clock.advance_nanos(500 * MS + 3);
        pacer.reanchor();
        assert_eq!(pacer.wait(), Tick::OnTime);
        assert_eq!(clock.now(), Timestamp(620 * MS + 3));
        // The clock set back (a wall clock stepped): the next tick is one
        // period on, not when the old deadline comes round again.
        clock.set(Timestamp(10 * MS));
        assert_eq!(pacer.wait(), Tick::OnTime);
        assert_eq!(clock.now(), Timestamp(20 * MS));
        assert_eq!(pacer.wait(), Tick::OnTime);
        assert_eq!(clock.now(), Timestamp(30 * MS));
    }

    #[test]
    fn rate_and_period_agree_and_a_zero_period_never_waits() {
        let clock = ManualClock::new(Timestamp(0));
        assert_eq!(Pacer::at_rate(100.0, &clock).period(), Duration::from_millis(10));
        let mut free = Pacer::new(Duration::ZERO, &clock);
        assert_eq!(free.wait(), Tick::OnTime);
        assert_eq!(clock.now(), Timestamp(0));
    }

    #[test]
    fn on_the_system_clock_ticks_take_a_period_of_real_time() {
        let mut pacer = Pacer::new(Duration::from_millis(5), SystemClock);
        let started = std::time::Instant::now();
        for _ in 0..4 {
            pacer.wait();
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(19) && took < Duration::from_millis(500), "4 ticks of 5 ms took {took:?}");
    }
}
