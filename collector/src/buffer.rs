//! The durable buffer between the pollers and the store: an append-only log of segments on
//! disk, bounded, read in order, with an acknowledgement pointer that only moves once the store
//! has accepted what lies before it.
//!
//! Layout of the buffer directory: segment files `<id>.seg` (id: 16 hex digits, increasing)
//! holding records, and `ack`, the position up to which records are in the store. A record is
//! `[len: u32 LE][crc32: u32 LE][payload: len bytes]`, the payload one batch of readings in a
//! compact binary form. After a crash the log is read up to its last whole, checksummed record;
//! a torn tail is cut off.
//!
//! A reading counts as accepted once it is appended (written to the file): a killed process
//! loses nothing the kernel has, and `fsync_interval` bounds what a power cut can take. Re-sending
//! records after a lost `ack` update is harmless because store writes are idempotent.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::DateTime;
use model::{DeviceId, PointName, Quality, Reading, Value};
use serde::Deserialize;

/// Segments roll over at this size, so acknowledged data can be deleted in pieces.
const SEGMENT_BYTES: u64 = 8 << 20;
const HEADER: usize = 8;

/// What to do when the buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Stop accepting readings until the store catches up (the pollers wait).
    #[default]
    Block,
    /// Delete the oldest segment not yet in the store, counting the readings dropped.
    DropOldest,
}

/// A position in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    len: u64,
    readings: u64,
}

/// Errors of the buffer; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("buffer {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the buffer is full ({bytes} bytes, limit {limit})")]
    Full { bytes: u64, limit: u64 },
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> BufferError + '_ {
    move |source| BufferError::Io { path: path.to_owned(), source }
}

/// The log. Not thread-safe by itself: the collector holds it behind a mutex.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    segments: VecDeque<Segment>,
    active: File,
    ack: Position,
    limit_bytes: u64,
    when_full: WhenFull,
    fsync_interval: Duration,
    last_sync: Instant,
    /// Readings deleted unsent by `DropOldest`, since start.
    pub dropped_total: u64,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}.seg"))
}

impl Log {
    /// Opens (or creates) the buffer in `dir`, recovering from a crash.
    pub fn open(
        dir: &Path,
        limit_bytes: u64,
        when_full: WhenFull,
        fsync_interval: Duration,
    ) -> Result<Log, BufferError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut ids: Vec<u64> = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                u64::from_str_radix(name.strip_suffix(".seg")?, 16).ok()
            })
            .collect();
        ids.sort_unstable();
        let ack_path = dir.join("ack");
        let ack = match fs::read_to_string(&ack_path) {
            Ok(text) => parse_ack(&text).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Position::default(),
            Err(e) => return Err(io_err(&ack_path)(e)),
        };
        let mut segments = VecDeque::new();
        for id in ids {
            let path = segment_path(dir, id);
            if id < ack.segment {
                // Wholly in the store already; a crash came between the ack and the delete.
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            let (len, readings) = scan(&path)?;
            segments.push_back(Segment { id, len, readings });
        }
        let next_id = segments.back().map(|s| s.id + 1).unwrap_or(ack.segment.max(1));
        // Always append to a fresh segment: the last one may end in a torn record, now cut off.
        let active_path = segment_path(dir, next_id);
        let active = OpenOptions::new().create(true).append(true).open(&active_path).map_err(io_err(&active_path))?;
        segments.push_back(Segment { id: next_id, len: 0, readings: 0 });
        let mut log = Log {
            dir: dir.to_owned(),
            segments,
            active,
            ack,
            limit_bytes,
            when_full,
            fsync_interval,
            last_sync: Instant::now(),
            dropped_total: 0,
        };
        if log.ack.segment < log.segments[0].id {
            log.ack = Position { segment: log.segments[0].id, offset: 0 };
        }
        Ok(log)
    }

    /// Bytes on disk not yet acknowledged (approximately: whole segments past the ack).
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum::<u64>().saturating_sub(self.ack_offset_in_first())
    }

    /// Readings not yet acknowledged (counted per segment; the first one may be partly sent).
    pub fn depth(&self) -> u64 {
        self.segments.iter().map(|s| s.readings).sum()
    }

    fn ack_offset_in_first(&self) -> u64 {
        match self.segments.front() {
            Some(s) if s.id == self.ack.segment => self.ack.offset,
            _ => 0,
        }
    }

    /// Appends one batch. With `Block`, a full buffer refuses it (`Full`) and the caller waits;
    /// with `DropOldest`, the oldest segment is given up to make room.
    pub fn append(&mut self, batch: &[Reading]) -> Result<(), BufferError> {
        if batch.is_empty() {
            return Ok(());
        }
        let payload = encode(batch);
        let needed = (HEADER + payload.len()) as u64;
        while self.bytes() + needed > self.limit_bytes {
            match self.when_full {
                WhenFull::Block => return Err(BufferError::Full { bytes: self.bytes(), limit: self.limit_bytes }),
                WhenFull::DropOldest => {
                    if self.segments.len() <= 1 {
                        // Only the active segment holds data: start a new one so the old can go.
                        self.rotate()?;
                    }
                    let oldest = self.segments.pop_front().expect("at least two segments after rotate");
                    self.dropped_total += oldest.readings;
                    let path = segment_path(&self.dir, oldest.id);
                    fs::remove_file(&path).map_err(io_err(&path))?;
                    let next = self.segments.front().expect("the active segment remains").id;
                    self.ack = Position { segment: next, offset: 0 };
                    self.write_ack()?;
                }
            }
        }
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        record.extend_from_slice(&payload);
        let path = segment_path(&self.dir, self.active_id());
        self.active.write_all(&record).map_err(io_err(&path))?;
        let seg = self.segments.back_mut().expect("an active segment exists");
        seg.len += record.len() as u64;
        seg.readings += batch.len() as u64;
        if self.last_sync.elapsed() >= self.fsync_interval {
            self.active.sync_data().map_err(io_err(&path))?;
            self.last_sync = Instant::now();
        }
        if seg.len >= SEGMENT_BYTES {
            self.rotate()?;
        }
        Ok(())
    }

    fn active_id(&self) -> u64 {
        self.segments.back().expect("an active segment exists").id
    }

    fn rotate(&mut self) -> Result<(), BufferError> {
        let old = segment_path(&self.dir, self.active_id());
        self.active.sync_data().map_err(io_err(&old))?;
        let id = self.active_id() + 1;
        let path = segment_path(&self.dir, id);
        self.active = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        self.segments.push_back(Segment { id, len: 0, readings: 0 });
        Ok(())
    }

    /// Reads records from the acknowledged position on, up to about `max_readings`; returns
    /// them with the position just past the last record read.
    pub fn read(&self, max_readings: usize) -> Result<(Vec<Reading>, Position), BufferError> {
        self.read_from(self.ack, max_readings)
    }

    /// Reads records from `start` on (a position not yet acknowledged, e.g. the end of a batch
    /// being written), so the next batch can be read while the store takes the current one.
    pub fn read_from(&self, start: Position, max_readings: usize) -> Result<(Vec<Reading>, Position), BufferError> {
        let mut out = Vec::new();
        let start = start.max(self.ack);
        let mut pos = start;
        for seg in self.segments.iter().filter(|s| s.id >= start.segment) {
            if seg.id > pos.segment {
                pos = Position { segment: seg.id, offset: 0 };
            }
            if pos.offset >= seg.len {
                continue;
            }
            let path = segment_path(&self.dir, seg.id);
            let mut file = File::open(&path).map_err(io_err(&path))?;
            file.seek(SeekFrom::Start(pos.offset)).map_err(io_err(&path))?;
            let mut reader = io::BufReader::new(file.take(seg.len - pos.offset));
            while pos.offset < seg.len && out.len() < max_readings {
                match read_record(&mut reader).map_err(io_err(&path))? {
                    Some((payload, size)) => {
                        decode(&payload, &mut out)
                            .map_err(|m| io_err(&path)(io::Error::new(io::ErrorKind::InvalidData, m)))?;
                        pos.offset += size;
                    }
                    None => break,
                }
            }
            if out.len() >= max_readings {
                break;
            }
        }
        Ok((out, pos))
    }

    /// Marks everything before `pos` as stored, and deletes segments wholly behind it.
    pub fn ack(&mut self, pos: Position, readings: u64) -> Result<(), BufferError> {
        if pos <= self.ack {
            return Ok(());
        }
        // Count the acknowledged readings off the segments they came from, oldest first.
        let mut left = readings;
        for seg in self.segments.iter_mut() {
            if seg.id > pos.segment || left == 0 {
                break;
            }
            let take = left.min(seg.readings);
            seg.readings -= take;
            left -= take;
        }
        self.ack = pos;
        self.write_ack()?;
        while self.segments.len() > 1 {
            let front = &self.segments[0];
            let done = front.id < pos.segment || (front.id == pos.segment && pos.offset >= front.len);
            if !done {
                break;
            }
            let path = segment_path(&self.dir, front.id);
            fs::remove_file(&path).map_err(io_err(&path))?;
            self.segments.pop_front();
        }
        Ok(())
    }

    fn write_ack(&self) -> Result<(), BufferError> {
        let tmp = self.dir.join("ack.tmp");
        let text = format!("{:016x} {}\n", self.ack.segment, self.ack.offset);
        fs::write(&tmp, text).map_err(io_err(&tmp))?;
        fs::rename(&tmp, self.dir.join("ack")).map_err(io_err(&tmp))
    }

    /// Flushes the active segment to stable storage (on shutdown).
    pub fn sync(&mut self) -> Result<(), BufferError> {
        let path = segment_path(&self.dir, self.active_id());
        self.active.sync_data().map_err(io_err(&path))
    }
}

fn parse_ack(text: &str) -> Option<Position> {
    let (seg, off) = text.trim().split_once(' ')?;
    Some(Position { segment: u64::from_str_radix(seg, 16).ok()?, offset: off.parse().ok()? })
}

/// Reads one record; `None` at the end or at a torn or corrupt record (which ends the log).
fn read_record(r: &mut impl Read) -> io::Result<Option<(Vec<u8>, u64)>> {
    let mut header = [0u8; HEADER];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len > SEGMENT_BYTES as usize * 4 {
        return Ok(None);
    }
    let mut payload = vec![0u8; len];
    match r.read_exact(&mut payload) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    if crc32fast::hash(&payload) != crc {
        return Ok(None);
    }
    Ok(Some((payload, (HEADER + len) as u64)))
}

/// Length and reading count of a segment's whole records; cuts off a torn tail.
fn scan(path: &Path) -> Result<(u64, u64), BufferError> {
    let file = File::open(path).map_err(io_err(path))?;
    let size = file.metadata().map_err(io_err(path))?.len();
    let mut reader = io::BufReader::new(file);
    let (mut len, mut readings) = (0u64, 0u64);
    while let Some((payload, n)) = read_record(&mut reader).map_err(io_err(path))? {
        let mut tmp = Vec::new();
        if decode(&payload, &mut tmp).is_err() {
            break;
        }
        readings += tmp.len() as u64;
        len += n;
    }
    if len < size {
        tracing::warn!(path = %path.display(), kept = len, size, "buffer segment ends in a torn record; cutting it off");
        OpenOptions::new().write(true).open(path).and_then(|f| f.set_len(len)).map_err(io_err(path))?;
    }
    Ok((len, readings))
}

fn quality_code(q: Quality) -> (u8, u8) {
    match q {
        Quality::Good => (0, 0),
        Quality::Stale => (1, 0),
        Quality::CommFail => (2, 0),
        Quality::Exception(c) => (3, c),
        Quality::OutOfRange => (4, 0),
    }
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// Batch → bytes: count, then per reading: device, point (u8 length + bytes), time (i64 ms),
/// quality (two bytes), value tag and value.
fn encode(batch: &[Reading]) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.len() * 40);
    out.extend_from_slice(&(batch.len() as u32).to_le_bytes());
    for r in batch {
        push_str(&mut out, r.device.as_str());
        push_str(&mut out, r.point.as_str());
        out.extend_from_slice(&r.time.timestamp_millis().to_le_bytes());
        let (q, c) = quality_code(r.quality);
        out.extend_from_slice(&[q, c]);
        match &r.value {
            Value::Number(v) => {
                out.push(1);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Text(t) => {
                out.push(2);
                out.extend_from_slice(&(t.len() as u32).to_le_bytes());
                out.extend_from_slice(t.as_bytes());
            }
            Value::Absent => out.push(0),
        }
    }
    out
}

fn decode(mut b: &[u8], out: &mut Vec<Reading>) -> Result<(), String> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if b.len() < n {
            return Err("record ends early".to_owned());
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Ok(head)
    }
    fn name<'a>(b: &mut &'a [u8]) -> Result<&'a [u8], String> {
        let n = take(b, 1)?[0] as usize;
        take(b, n)
    }
    // A record is one poll cycle: the same device and the same few point names over and over.
    // Validating and allocating each name once per record keeps decoding cheap.
    let mut devices: HashMap<&[u8], DeviceId> = HashMap::new();
    let mut points: HashMap<&[u8], PointName> = HashMap::new();
    let count = u32::from_le_bytes(take(&mut b, 4)?.try_into().expect("4 bytes"));
    for _ in 0..count {
        let raw = name(&mut b)?;
        let device = match devices.get(raw) {
            Some(d) => d.clone(),
            None => {
                let d = DeviceId::new(String::from_utf8(raw.to_vec()).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
                devices.insert(raw, d.clone());
                d
            }
        };
        let raw = name(&mut b)?;
        let point = match points.get(raw) {
            Some(p) => p.clone(),
            None => {
                let p = PointName::new(String::from_utf8(raw.to_vec()).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
                points.insert(raw, p.clone());
                p
            }
        };
        let ms = i64::from_le_bytes(take(&mut b, 8)?.try_into().expect("8 bytes"));
        let time = DateTime::from_timestamp_millis(ms).ok_or("bad time")?;
        let qc = take(&mut b, 2)?;
        let quality = match qc[0] {
            0 => Quality::Good,
            1 => Quality::Stale,
            2 => Quality::CommFail,
            3 => Quality::Exception(qc[1]),
            4 => Quality::OutOfRange,
            other => return Err(format!("bad quality code {other}")),
        };
        let value = match take(&mut b, 1)?[0] {
            0 => Value::Absent,
            1 => Value::Number(f64::from_le_bytes(take(&mut b, 8)?.try_into().expect("8 bytes"))),
            2 => {
                let n = u32::from_le_bytes(take(&mut b, 4)?.try_into().expect("4 bytes")) as usize;
                Value::Text(String::from_utf8(take(&mut b, n)?.to_vec()).map_err(|e| e.to_string())?)
            }
            other => return Err(format!("bad value tag {other}")),
        };
        out.push(Reading { device, point, time, value, quality });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(i: i64) -> Reading {
        Reading {
            device: DeviceId::new("fm01").unwrap(),
            point: PointName::new("flow").unwrap(),
            time: DateTime::from_timestamp_millis(1_700_000_000_000 + i).unwrap(),
            value: if i % 7 == 0 { Value::Text(format!("t{i} \"q\"")) } else { Value::Number(i as f64 * 0.5) },
            quality: if i % 5 == 0 { Quality::Exception(6) } else { Quality::Good },
        }
    }

    fn open(dir: &Path, limit: u64, when_full: WhenFull) -> Log {
        Log::open(dir, limit, when_full, Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn round_trip_in_order_and_ack_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), 1 << 30, WhenFull::Block);
        for b in 0..10 {
            log.append(&(b * 10..b * 10 + 10).map(reading).collect::<Vec<_>>()).unwrap();
        }
        assert_eq!(log.depth(), 100);
        let (got, pos) = log.read(35).unwrap();
        assert_eq!(got, (0..40).map(reading).collect::<Vec<_>>(), "whole records, in order");
        log.ack(pos, got.len() as u64).unwrap();
        assert_eq!(log.depth(), 60);
        let (rest, pos) = log.read(1000).unwrap();
        assert_eq!(rest, (40..100).map(reading).collect::<Vec<_>>());
        log.ack(pos, rest.len() as u64).unwrap();
        assert_eq!(log.read(1000).unwrap().0, vec![]);
    }

    #[test]
    fn reopening_resumes_after_the_ack_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = open(dir.path(), 1 << 30, WhenFull::Block);
            log.append(&(0..5).map(reading).collect::<Vec<_>>()).unwrap();
            log.append(&(5..10).map(reading).collect::<Vec<_>>()).unwrap();
            let (got, pos) = log.read(5).unwrap();
            assert_eq!(got.len(), 5);
            log.ack(pos, 5).unwrap();
            log.append(&(10..15).map(reading).collect::<Vec<_>>()).unwrap();
        }
        // A crash in the middle of a write leaves half a record behind.
        let seg = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .max()
            .unwrap();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);
        let mut log = open(dir.path(), 1 << 30, WhenFull::Block);
        let (got, _) = log.read(1000).unwrap();
        assert_eq!(got, (5..15).map(reading).collect::<Vec<_>>());
        log.append(&(15..16).map(reading).collect::<Vec<_>>()).unwrap();
        assert_eq!(log.read(1000).unwrap().0.len(), 11);
    }

    #[test]
    fn a_full_buffer_blocks_or_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let batch: Vec<Reading> = (0..100).map(reading).collect();
        let mut blocking = open(&dir.path().join("b"), 10_000, WhenFull::Block);
        let mut accepted = 0;
        while blocking.append(&batch).is_ok() {
            accepted += 1;
        }
        assert!(accepted >= 1 && blocking.bytes() <= 10_000);
        assert!(matches!(blocking.append(&batch), Err(BufferError::Full { .. })));
        let (got, pos) = blocking.read(100_000).unwrap();
        blocking.ack(pos, got.len() as u64).unwrap();
        blocking.append(&batch).unwrap();

        let mut dropping = open(&dir.path().join("d"), 10_000, WhenFull::DropOldest);
        for _ in 0..20 {
            dropping.append(&batch).unwrap();
        }
        assert!(dropping.dropped_total > 0);
        let (got, _) = dropping.read(100_000).unwrap();
        assert_eq!(
            got.len() as u64 + dropping.dropped_total,
            20 * 100,
            "every reading is either kept or counted as dropped"
        );
    }
}
