//! `trailwatch gen`: a CloudTrail corpus of any size for benchmarks and
//! hunts. A background day of benign records is replayed day after day with
//! fresh ids and times, cut into gzipped objects named and laid out as
//! CloudTrail delivers them, with the built-in rules' attack examples
//! sprinkled in at a fixed rate. The same arguments give the same bytes.

mod attacks;
mod pool;
mod profile;
mod rng;
mod template;

pub use attacks::EXPECTED_LEVEL;
pub use pool::Pool;
pub use profile::{BURST_PRINCIPAL, Profile};
pub use rng::{SplitMix, civil, days_from_civil, parse_rfc3339, rfc3339};
pub use template::{Fill, Template};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::rules::RuleSet;
use attacks::Attack;

/// The manifest's name in the output directory (JSON; not `.json`, so that
/// `scan` of the directory does not take it for a log file).
pub const MANIFEST_NAME: &str = "corpus.manifest";

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub background: PathBuf,
    pub out: PathBuf,
    /// Decompressed bytes to reach (the last object may pass it).
    pub target_bytes: u64,
    pub seed: u64,
    /// Day of the first record, in days since 1970-01-01.
    pub start_day: i64,
    /// One attack record after every this many background records (0: none).
    pub attack_every: u64,
    /// CloudTrail's delivery interval: how much time one object covers.
    pub interval_seconds: i64,
    /// Everything in one object (for the memory benchmark).
    pub single_object: bool,
    /// Also write every record, one per line, to this file.
    pub jsonl: Option<PathBuf>,
    pub threads: usize,
    /// How attack-like and how bursty (`sparse` keeps `attack_every`).
    pub profile: Profile,
}

/// One object to write: which background object, in which replay.
#[derive(Debug, Clone, Copy)]
struct Planned {
    replay: i64,
    object: usize,
    /// Index of the object's first background record in the whole corpus.
    first: u64,
    /// Burst records in this object, and how many came before it.
    burst: u64,
    burst_before: u64,
}

/// An attack record written, and what it must raise.
#[derive(Debug, Clone, Serialize)]
pub struct Injected {
    pub event_id: String,
    pub rule: String,
    /// Every alerting rule at the expected level or above that fires on it.
    pub fires: Vec<String>,
    pub key: String,
}

/// What was written: [`MANIFEST_NAME`] in the output directory.
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub generator: String,
    pub seed: u64,
    pub background: String,
    pub background_records: usize,
    pub start_date: String,
    pub interval_seconds: i64,
    pub attack_every: u64,
    pub profile: String,
    /// Records of the burst (profile `burst`), all by `burst_principal`.
    pub burst_records: u64,
    pub burst_principal: Option<String>,
    pub objects: usize,
    pub records: u64,
    pub attack_records: usize,
    pub decompressed_bytes: u64,
    pub compressed_bytes: u64,
    /// Alerts a scan with the built-in pack must raise at `expected_level`
    /// or above: one per attack record and rule it fires.
    pub expected_level: String,
    pub expected_alerts: usize,
    pub expected_by_rule: BTreeMap<String, usize>,
    pub attacks: Vec<Injected>,
}

/// One object's outcome.
struct Written {
    index: usize,
    records: u64,
    bytes: u64,
    compressed: u64,
    attacks: Vec<Injected>,
}

/// Writes the corpus; returns its manifest (also written to [`MANIFEST_NAME`]).
pub fn generate(options: &Options, rules: &RuleSet) -> Result<Manifest, String> {
    let pool = Pool::load(&options.background, options.interval_seconds)?;
    let dense = options.profile == Profile::Dense;
    let attack_every = if dense { 2 } else { options.attack_every };
    let attacks = if attack_every > 0 {
        let attacks = attacks::candidates(rules, dense);
        if attacks.is_empty() {
            return Err("no rule offers an attack example to sprinkle".into());
        }
        attacks
    } else {
        Vec::new()
    };
    let mut plan = plan(&pool, options.target_bytes);
    if let Profile::Burst { events, seconds } = options.profile {
        place_burst(&pool, &mut plan, events, seconds);
    }
    let burst_templates = profile::burst_templates();
    std::fs::create_dir_all(&options.out)
        .map_err(|e| format!("{}: cannot create: {e}", options.out.display()))?;
    let jsonl = match &options.jsonl {
        Some(path) => Some(Mutex::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| format!("{}: cannot create: {e}", path.display()))?,
        ))),
        None => None,
    };
    let job = Job {
        options,
        attack_every,
        burst_templates: &burst_templates,
        pool: &pool,
        attacks: &attacks,
        rules,
        plan: &plan,
        jsonl: jsonl.as_ref(),
    };
    let mut written = if options.single_object {
        vec![job.write_single()?]
    } else {
        job.write_all()?
    };
    if let Some(jsonl) = jsonl {
        let mut w = jsonl
            .into_inner()
            .map_err(|_| "the JSON lines writer failed")?;
        w.flush().map_err(|e| format!("JSON lines: {e}"))?;
    }
    written.sort_by_key(|w| w.index);

    let injected: Vec<Injected> = written
        .iter_mut()
        .flat_map(|w| w.attacks.drain(..))
        .collect();
    let mut by_rule = BTreeMap::new();
    for rule in injected.iter().flat_map(|i| &i.fires) {
        *by_rule.entry(rule.clone()).or_insert(0) += 1;
    }
    let mut start = String::new();
    rfc3339(options.start_day * 86_400, &mut start);
    let manifest = Manifest {
        generator: format!("trailwatch gen {}", env!("CARGO_PKG_VERSION")),
        seed: options.seed,
        background: options.background.display().to_string(),
        background_records: pool.templates.len(),
        start_date: start[..10].to_owned(),
        interval_seconds: options.interval_seconds,
        attack_every,
        profile: options.profile.name().to_owned(),
        burst_records: plan.iter().map(|p| p.burst).sum(),
        burst_principal: matches!(options.profile, Profile::Burst { .. })
            .then(|| BURST_PRINCIPAL.to_owned()),
        objects: written.len(),
        records: written.iter().map(|w| w.records).sum(),
        attack_records: injected.len(),
        decompressed_bytes: written.iter().map(|w| w.bytes).sum(),
        compressed_bytes: written.iter().map(|w| w.compressed).sum(),
        expected_level: EXPECTED_LEVEL.to_string(),
        expected_alerts: by_rule.values().sum(),
        expected_by_rule: by_rule,
        attacks: injected,
    };
    let path = options.out.join(MANIFEST_NAME);
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    Ok(manifest)
}

/// Background objects, replayed until `target` bytes.
fn plan(pool: &Pool, target: u64) -> Vec<Planned> {
    let mut plan = Vec::new();
    let (mut bytes, mut first) = (0_u64, 0_u64);
    'replays: for replay in 0.. {
        for (object, o) in pool.objects.iter().enumerate() {
            if bytes >= target.max(1) {
                break 'replays;
            }
            plan.push(Planned {
                replay,
                object,
                first,
                burst: 0,
                burst_before: 0,
            });
            bytes += o.bytes;
            first += o.records.len() as u64;
        }
    }
    plan
}

/// Puts `events` burst records into the objects delivered in the `seconds`
/// after the middle object's delivery (same replay), spread evenly.
fn place_burst(pool: &Pool, plan: &mut [Planned], events: u64, seconds: i64) {
    let Some(middle) = plan.get(plan.len() / 2).copied() else {
        return;
    };
    let from = pool.objects[middle.object].delivered;
    let chosen: Vec<usize> = (0..plan.len())
        .filter(|&i| {
            let p = plan[i];
            let t = pool.objects[p.object].delivered;
            p.replay == middle.replay && (from..from + seconds.max(1)).contains(&t)
        })
        .collect();
    let n = chosen.len() as u64;
    let mut before = 0;
    for (k, &i) in chosen.iter().enumerate() {
        let quota = events / n + u64::from((k as u64) < events % n);
        plan[i].burst = quota;
        plan[i].burst_before = before;
        before += quota;
    }
}

struct Job<'a> {
    options: &'a Options,
    /// One attack record after every this many background records.
    attack_every: u64,
    burst_templates: &'a [Template],
    pool: &'a Pool,
    attacks: &'a [Attack],
    rules: &'a RuleSet,
    plan: &'a [Planned],
    jsonl: Option<&'a Mutex<std::io::BufWriter<std::fs::File>>>,
}

/// Counts what goes through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An object being written: gzip over a file, with the records' bytes counted.
struct ObjectFile {
    key: String,
    path: PathBuf,
    out: std::io::BufWriter<flate2::write::GzEncoder<Counted<std::fs::File>>>,
    records: u64,
    bytes: u64,
    attacks: Vec<Injected>,
    jsonl: Vec<u8>,
}

impl<'a> Job<'a> {
    /// One object per planned background object, on every thread.
    fn write_all(&self) -> Result<Vec<Written>, String> {
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Vec::with_capacity(self.plan.len()));
        let failure = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..self.options.threads.max(1) {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= self.plan.len() {
                            return;
                        }
                        let result = self.open(index).and_then(|mut file| {
                            self.fill(index, &mut file)?;
                            self.close(index, file)
                        });
                        match result {
                            Ok(w) => lock(&results).push(w),
                            Err(e) => {
                                lock(&failure).get_or_insert(e);
                                next.store(self.plan.len(), Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                });
            }
        });
        match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(results.into_inner().unwrap_or_else(|p| p.into_inner())),
        }
    }

    /// Every planned object's records in one object, named as the first.
    fn write_single(&self) -> Result<Written, String> {
        let mut file = self.open(0)?;
        for index in 0..self.plan.len() {
            self.fill(index, &mut file)?;
        }
        self.close(0, file)
    }

    fn open(&self, index: usize) -> Result<ObjectFile, String> {
        let planned = self.plan[index];
        let object = &self.pool.objects[planned.object];
        let period =
            self.options.start_day * 86_400 + planned.replay * self.pool.period_days * 86_400;
        let mut stamp = String::new();
        rfc3339(period + object.delivered, &mut stamp);
        let compact: String = stamp[..16]
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        let mut rng = SplitMix::for_item(self.options.seed, 0x6b6579, index as u64);
        let key = format!(
            "AWSLogs/{a}/CloudTrail/{r}/{y}/{m}/{d}/{a}_CloudTrail_{r}_{compact}Z_{tail}.json.gz",
            a = object.account,
            r = object.region,
            y = &stamp[0..4],
            m = &stamp[5..7],
            d = &stamp[8..10],
            tail = rng.alnum(16),
        );
        let path = self.options.out.join(&key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
        }
        let file = std::fs::File::create(&path)
            .map_err(|e| format!("{}: cannot create: {e}", path.display()))?;
        let gz = flate2::write::GzEncoder::new(
            Counted {
                inner: file,
                bytes: 0,
            },
            flate2::Compression::default(),
        );
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, gz);
        out.write_all(b"{\"Records\":[")
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(ObjectFile {
            key,
            path,
            out,
            records: 0,
            bytes: 0,
            attacks: Vec::new(),
            jsonl: Vec::new(),
        })
    }

    /// Writes planned object `index`'s records, attacks included, into `file`.
    fn fill(&self, index: usize, file: &mut ObjectFile) -> Result<(), String> {
        let planned = self.plan[index];
        let object = &self.pool.objects[planned.object];
        let period =
            self.options.start_day * 86_400 + planned.replay * self.pool.period_days * 86_400;
        let mut rng = SplitMix::for_item(self.options.seed, 0x726563, index as u64);
        let (mut id, mut request, mut time) = (String::new(), String::new(), String::new());
        let mut record = Vec::with_capacity(4096);
        let every = self.attack_every;
        let mut burst_written = planned.burst_before;
        for (n, &t) in object.records.iter().enumerate() {
            rng.uuid(&mut id);
            rng.uuid(&mut request);
            rfc3339(period + self.pool.offsets[t as usize], &mut time);
            record.clear();
            let fill = Fill {
                event_id: &id,
                event_time: &time,
                request_id: &request,
            };
            self.pool.templates[t as usize].write(&fill, &mut record);
            self.emit(file, &record)?;
            for _ in 0..profile::spread(planned.burst, object.records.len(), n) {
                let template = &self.burst_templates
                    [(burst_written % self.burst_templates.len() as u64) as usize];
                burst_written += 1;
                fresh_copy(
                    template,
                    &mut rng,
                    &time,
                    (&mut id, &mut request),
                    &mut record,
                );
                self.emit(file, &record)?;
            }
            let global = planned.first + n as u64 + 1;
            if every > 0 && global.is_multiple_of(every) {
                let attack =
                    &self.attacks[((global / every - 1) % self.attacks.len() as u64) as usize];
                let ids = (&mut id, &mut request);
                fresh_copy(&attack.template, &mut rng, &time, ids, &mut record);
                self.emit(file, &record)?;
                file.attacks.push(Injected {
                    event_id: id.clone(),
                    rule: attack.rule.clone(),
                    fires: attacks::fires(self.rules, &record),
                    key: file.key.clone(),
                });
            }
        }
        Ok(())
    }

    fn emit(&self, file: &mut ObjectFile, record: &[u8]) -> Result<(), String> {
        let sep: &[u8] = if file.records == 0 { b"" } else { b"," };
        file.out
            .write_all(sep)
            .and_then(|_| file.out.write_all(record))
            .map_err(|e| format!("{}: {e}", file.path.display()))?;
        file.records += 1;
        file.bytes += (sep.len() + record.len()) as u64;
        if let Some(jsonl) = self.jsonl {
            file.jsonl.extend_from_slice(record);
            file.jsonl.push(b'\n');
            if file.jsonl.len() >= 8 << 20 {
                self.flush_jsonl(jsonl, &mut file.jsonl)?;
            }
        }
        Ok(())
    }

    fn flush_jsonl(
        &self,
        jsonl: &Mutex<std::io::BufWriter<std::fs::File>>,
        buf: &mut Vec<u8>,
    ) -> Result<(), String> {
        lock(jsonl)
            .write_all(buf)
            .map_err(|e| format!("JSON lines: {e}"))?;
        buf.clear();
        Ok(())
    }

    fn close(&self, index: usize, mut file: ObjectFile) -> Result<Written, String> {
        let at = |e: std::io::Error| format!("{}: {e}", file.path.display());
        file.out.write_all(b"]}").map_err(at)?;
        let gz = file.out.into_inner().map_err(|e| at(e.into_error()))?;
        let mut counted = gz.finish().map_err(at)?;
        counted.flush().map_err(at)?;
        if let Some(jsonl) = self.jsonl {
            self.flush_jsonl(jsonl, &mut file.jsonl)?;
        }
        Ok(Written {
            index,
            records: file.records,
            bytes: file.bytes + 14,
            compressed: counted.bytes,
            attacks: file.attacks,
        })
    }
}

/// A copy of `template` at `time` with fresh ids from `rng` (written to
/// `ids` too) into `record`.
fn fresh_copy(
    template: &Template,
    rng: &mut SplitMix,
    time: &str,
    ids: (&mut String, &mut String),
    record: &mut Vec<u8>,
) {
    let (id, request) = ids;
    rng.uuid(id);
    rng.uuid(request);
    record.clear();
    let fill = Fill {
        event_id: id,
        event_time: time,
        request_id: request,
    };
    template.write(&fill, record);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Parses `YYYY-MM-DD` to days since 1970-01-01.
pub fn parse_date(text: &str) -> Result<i64, String> {
    parse_rfc3339(&format!("{text}T00:00:00Z"))
        .map(|s| s / 86_400)
        .ok_or_else(|| format!("'{text}' is not a date of the form YYYY-MM-DD"))
}
