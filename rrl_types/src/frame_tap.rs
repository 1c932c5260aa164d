//! The newest frames the policy saw, handed from the actor to a viewer
//! (the operator's console) without locks or allocation on the actor's
//! side: two buffers circulate between a `free` and a `full` queue, the
//! actor overwrites the unread frame rather than wait, and nothing is
//! copied while nobody watches.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam::queue::ArrayQueue;

use crate::FrameLayout;

/// Frames as the actor saw them: `layout.cameras` images of
/// `height x width` RGB, one after the other.
#[derive(Debug, Clone, Default)]
pub struct TappedFrames {
    pub layout: Option<FrameLayout>,
    pub pixels: Vec<u8>,
    /// The actor's step count when it offered them.
    pub step: u64,
}

#[derive(Debug)]
pub struct FrameTap {
    free: ArrayQueue<TappedFrames>,
    full: ArrayQueue<TappedFrames>,
    watched: AtomicBool,
    offered: AtomicU64,
}

impl Default for FrameTap {
    fn default() -> FrameTap {
        let free = ArrayQueue::new(2);
        for _ in 0..2 {
            let _ = free.push(TappedFrames::default());
        }
        FrameTap { free, full: ArrayQueue::new(1), watched: AtomicBool::new(false), offered: AtomicU64::new(0) }
    }
}

impl FrameTap {
    /// A viewer is there from now on: offered frames are kept.
    pub fn watch(&self) {
        self.watched.store(true, Ordering::Relaxed);
    }

    pub fn is_watched(&self) -> bool {
        self.watched.load(Ordering::Relaxed)
    }

    /// The actor's side: keeps a copy of `pixels` as the newest frames,
    /// replacing frames the viewer has not taken yet. Never blocks; once
    /// both buffers have grown to the frames' size, never allocates. A
    /// no-op while nobody watches.
    pub fn offer(&self, layout: FrameLayout, pixels: &[u8], step: u64) {
        if !self.is_watched() {
            return;
        }
        // The unread frame is overwritten first: the viewer wants the newest.
        let Some(mut slot) = self.full.pop().or_else(|| self.free.pop()) else {
            // The viewer holds both buffers (it is encoding): skip this one.
            return;
        };
        slot.layout = Some(layout);
        slot.pixels.clear();
        slot.pixels.extend_from_slice(pixels);
        slot.step = step;
        self.offered.fetch_add(1, Ordering::Relaxed);
        if let Err(slot) = self.full.push(slot) {
            // Only this thread pushes to `full`, and it just emptied it.
            let _ = self.free.push(slot);
        }
    }

    /// The viewer's side: the newest frames offered since the last take.
    /// Hand the buffer back with `give_back` once done with it.
    pub fn take(&self) -> Option<TappedFrames> {
        self.full.pop()
    }

    pub fn give_back(&self, frames: TappedFrames) {
        let _ = self.free.push(frames);
    }

    /// Frames offered while watched, in all.
    pub fn offered(&self) -> u64 {
        self.offered.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: FrameLayout = FrameLayout { cameras: 1, height: 1, width: 2 };

    #[test]
    fn the_viewer_gets_the_newest_frames_and_nothing_is_kept_unwatched() {
        let tap = FrameTap::default();
        tap.offer(LAYOUT, &[1; 6], 1);
        assert!(tap.take().is_none(), "nobody watched: nothing kept");
        tap.watch();
        tap.offer(LAYOUT, &[2; 6], 2);
        tap.offer(LAYOUT, &[3; 6], 3);
        let newest = tap.take().expect("frames offered");
        assert_eq!((newest.step, newest.pixels.as_slice()), (3, &[3u8; 6][..]));
        // While the viewer holds one buffer the actor still has the other.
        tap.offer(LAYOUT, &[4; 6], 4);
        tap.give_back(newest);
        assert_eq!(tap.take().map(|f| f.step), Some(4));
        assert!(tap.take().is_none(), "each frame is taken once");
        assert_eq!(tap.offered(), 3);
    }
}
