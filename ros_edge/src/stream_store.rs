//! An actor's stream to its learner, encoded, kept so that a learner that
//! restarts can be sent all of it again. Only the items the learner has
//! not acknowledged stay in memory; every item is also appended to a spill
//! file beside the run (the wire form of what its episode files hold, so a
//! pixel run's hours of frames do not live in the actor's memory). The
//! file is deleted when the store is dropped. A spill file that cannot be
//! written (a full disk) is given up with a warning: the store then keeps
//! everything in memory, as it does without one.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

pub struct StreamStore {
    spill: Option<Spill>,
    /// Items from `first_in_memory` on.
    memory: VecDeque<Vec<u8>>,
    first_in_memory: u64,
    len: u64,
}

struct Spill {
    path: PathBuf,
    file: File,
    /// Where each item starts in the file, and where the file ends.
    offsets: Vec<u64>,
    end: u64,
}

impl StreamStore {
    /// A store spilling to `spill` (created or emptied), or keeping every
    /// item in memory without one.
    pub fn new(spill: Option<PathBuf>) -> std::io::Result<StreamStore> {
        let spill = match spill {
            Some(path) => {
                let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
                Some(Spill { file, path, offsets: Vec::new(), end: 0 })
            }
            None => None,
        };
        Ok(StreamStore { spill, memory: VecDeque::new(), first_in_memory: 0, len: 0 })
    }

    /// Items in the stream.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the next item.
    pub fn push(&mut self, item: Vec<u8>) {
        if let Some(spill) = &mut self.spill {
            match spill.file.write_all(&item) {
                Ok(()) => {
                    spill.offsets.push(spill.end);
                    spill.end += item.len() as u64;
                }
                Err(e) => {
                    tracing::warn!(path = %spill.path.display(), "the learner link's spill file cannot be written ({e}): the stream stays in memory from now on");
                    self.give_up_spilling();
                }
            }
        }
        self.memory.push_back(item);
        self.len += 1;
    }

    /// Items before `sequence` may leave memory (they are in the spill
    /// file); without a spill file every item stays.
    pub fn forget_before(&mut self, sequence: u64) {
        if self.spill.is_none() {
            return;
        }
        while self.first_in_memory < sequence.min(self.len) {
            self.memory.pop_front();
            self.first_in_memory += 1;
        }
    }

    /// Item `sequence` (below `len`), from memory or read back from the spill file.
    pub fn get(&self, sequence: u64) -> std::io::Result<Vec<u8>> {
        if sequence >= self.first_in_memory {
            return Ok(self.memory[(sequence - self.first_in_memory) as usize].clone());
        }
        let spill = self.spill.as_ref().expect("items leave memory only into the spill file");
        let index = sequence as usize;
        let start = spill.offsets[index];
        let end = spill.offsets.get(index + 1).copied().unwrap_or(spill.end);
        let mut item = vec![0; (end - start) as usize];
        spill.file.read_exact_at(&mut item, start)?;
        Ok(item)
    }

    /// Stops spilling: items still only in the file are read back into memory first.
    fn give_up_spilling(&mut self) {
        let Some(spill) = &self.spill else { return };
        let mut earlier = VecDeque::new();
        for sequence in 0..self.first_in_memory {
            let index = sequence as usize;
            let end = spill.offsets.get(index + 1).copied().unwrap_or(spill.end);
            let mut item = vec![0; (end - spill.offsets[index]) as usize];
            if spill.file.read_exact_at(&mut item, spill.offsets[index]).is_err() {
                tracing::warn!("the learner link's spill file cannot be read back: a learner that restarts misses the stream's first {} items", self.first_in_memory);
                break;
            }
            earlier.push_back(item);
        }
        if earlier.len() as u64 == self.first_in_memory {
            earlier.append(&mut self.memory);
            self.memory = earlier;
            self.first_in_memory = 0;
        }
        let spill = self.spill.take().expect("checked");
        let _ = std::fs::remove_file(&spill.path);
    }
}

impl Drop for StreamStore {
    fn drop(&mut self) {
        if let Some(spill) = &self.spill {
            let _ = std::fs::remove_file(&spill.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(k: u64) -> Vec<u8> {
        (0..(k % 7 + 1)).map(|i| (k * 31 + i) as u8).collect()
    }

    /// Acknowledged items leave memory but read back from the spill file
    /// byte for byte; the newest stay in memory; the file goes with the store.
    #[test]
    fn acknowledged_items_leave_memory_and_read_back_from_the_spill_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stream.bin");
        let mut store = StreamStore::new(Some(path.clone())).unwrap();
        for k in 0..1000 {
            store.push(item(k));
        }
        store.forget_before(900);
        assert_eq!((store.len(), store.memory.len()), (1000, 100), "only the unacknowledged items stay in memory");
        for k in [0, 1, 450, 899, 900, 999] {
            assert_eq!(store.get(k).unwrap(), item(k), "item {k}");
        }
        drop(store);
        assert!(!path.exists(), "the spill file is deleted with the store");
    }

    /// Without a spill file nothing leaves memory.
    #[test]
    fn without_a_spill_file_every_item_stays_in_memory() {
        let mut store = StreamStore::new(None).unwrap();
        for k in 0..50 {
            store.push(item(k));
        }
        store.forget_before(40);
        assert_eq!(store.memory.len(), 50);
        assert_eq!(store.get(3).unwrap(), item(3));
    }
}
