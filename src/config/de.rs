//! Stage one's reader: a serde `Deserializer` adapter between the YAML/JSON parser and the raw
//! structs, so that every problem the parser meets is worded for people and bounded:
//!
//! - it tracks the field path of every value (`targets[1].checks[0].tcp_port`);
//! - it reads every map key itself: an unknown key (with the key the user probably meant) or a
//!   key given twice is recorded and skipped, so one run reports every such key of the file;
//! - it counts what the document expands to. A YAML alias (`*name`) repeats everything its
//!   anchor (`&name`) holds, so a small file can stand for gigabytes ("billion laughs"): past
//!   [`MAX_VALUES`] values or [`MAX_TEXT`] bytes of text, reading stops with an error, in bounded
//!   time and memory, whatever the shape of the document;
//! - it takes YAML merge keys (`<<: *template`, or `<<: [*a, *b]`) in every map: the entries
//!   of the maps they name are read after the map's own keys, which override them (an earlier
//!   map overrides a later one), and are held to the same rules (an unknown key is reported,
//!   at the line of its `<<`). What a merge brings in counts towards the limits each time it
//!   is merged, as an alias does. A top-level key that starts with `x-` is no setting and is
//!   skipped: the place for the templates' anchors (`x-web: &web {...}`, as docker compose);
//! - it says what a value should be in the words of the file: `true or false`, `an integer`,
//!   `a list, e.g. ["/usr/sbin/nginx", "-c", "x"]`, a described map — never a Rust type or the
//!   name of a raw struct.
//!
//! Everything here is generic over the underlying deserializer (YAML or JSON).

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_yaml::Value;
use std::cell::{Cell, RefCell};
use std::collections::{HashSet, VecDeque};
use std::fmt;

/// At most this many values (every key, scalar, list and map counts one) once YAML aliases are
/// expanded. A config of 5,000 targets, each with two checks and an exec action, holds about
/// 115,000 (and 0.5 MiB of text, in a 0.9 MiB file).
pub const MAX_VALUES: u64 = 500_000;

/// At most this much text (bytes of keys and strings) once YAML aliases are expanded.
pub const MAX_TEXT: u64 = 8 << 20;

/// The error that ends reading at an unknown key that could not be skipped (the key itself is
/// reported as a key problem).
pub const STOPPED: &str = "reading stopped at this unknown key";

/// A key problem found while reading: an unknown key or a key given twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    /// Path of the key itself (`default_policy.fail_treshold`), to find its line.
    pub path: String,
    /// The path as messages show it: a long key cut (see [`shorten_key`]).
    pub shown: String,
    pub message: String,
    /// Which occurrence of the path holds the problem (1 = the second one, for a repeated key).
    pub occurrence: usize,
}

/// Why reading stopped, or what it found on the way.
#[derive(Debug)]
pub struct Failure<E> {
    /// Unknown and repeated keys, in document order: the first `max_keys` of them.
    pub keys: Vec<KeyProblem>,
    /// How many more were found (counted, not worded: a file of 300,000 unknown keys must not
    /// cost 300,000 messages).
    pub more_keys: usize,
    /// The first key of the document's top-level map, and whether it has a `targets` key:
    /// whether the file looks like a config at all.
    pub first_key: Option<String>,
    pub has_targets: bool,
    /// The error that stopped reading, with the path where it happened ("" for the document).
    pub error: Option<(String, E)>,
}

/// How the document is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// JSON: serde_json reads an integer asked for as i128 as a bare number token, so a string
    /// there would be "invalid number" (a syntax error): integers are read with
    /// `deserialize_any` instead, which words a wrong type right.
    pub json: bool,
    /// The text may hold YAML aliases (it has an `&anchor`): the size limits say so.
    pub aliases: bool,
    /// `<<` is a YAML merge key (YAML; in JSON it is a key like any other).
    pub merge_keys: bool,
    /// The most key problems worded; the rest are counted.
    pub max_keys: usize,
}

/// Deserialize `T` through the adapter.
pub fn deserialize<'de, D, T>(d: D, opts: Options) -> Result<T, Failure<D::Error>>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let track = Track {
        ints_via_any: opts.json,
        aliases: opts.aliases,
        merge_keys: opts.merge_keys,
        max_keys: opts.max_keys,
        ..Track::default()
    };
    let result = T::deserialize(De {
        inner: d,
        track: &track,
    });
    let keys = track.keys.take();
    let more_keys = track.more_keys.get();
    let first_key = track.first_key.take();
    let has_targets = track.has_targets.get();
    match result {
        Ok(t) if keys.is_empty() && more_keys == 0 => Ok(t),
        Ok(_) => Err(Failure {
            keys,
            more_keys,
            first_key,
            has_targets,
            error: None,
        }),
        Err(e) => Err(Failure {
            keys,
            more_keys,
            first_key,
            has_targets,
            error: Some((track.error_path.take().unwrap_or_default(), e)),
        }),
    }
}

/// The longest key a message quotes in full. A key can be anything: a line of a file an
/// `include:` glob matched by mistake (`/etc/shadow` as root), or megabytes on one line: its
/// start says which, the rest stays out of the journal.
pub const MAX_QUOTED_KEY: usize = 40;

/// `key` in backticks, as messages quote it: a long one cut (see [`shorten_key`]), its length
/// after the backticks: `` `kkk...` (1048576 characters) ``.
pub fn quote_key(key: &str) -> String {
    let n = key.chars().count();
    if n <= MAX_QUOTED_KEY {
        return format!("`{key}`");
    }
    let head: String = key.chars().take(MAX_QUOTED_KEY).collect();
    format!("`{head}...` ({n} characters)")
}

/// `key`, or its first [`MAX_QUOTED_KEY`] characters, `...` and its length (for a path).
pub fn shorten_key(key: &str) -> String {
    let n = key.chars().count();
    if n <= MAX_QUOTED_KEY {
        return key.to_string();
    }
    let head: String = key.chars().take(MAX_QUOTED_KEY).collect();
    format!("{head}... ({n} characters)")
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Default)]
struct Track {
    path: RefCell<Vec<Seg>>,
    /// The path of the innermost error, recorded on its way out.
    error_path: RefCell<Option<String>>,
    keys: RefCell<Vec<KeyProblem>>,
    more_keys: Cell<usize>,
    max_keys: usize,
    first_key: RefCell<Option<String>>,
    has_targets: Cell<bool>,
    values: Cell<u64>,
    text: Cell<u64>,
    ints_via_any: bool,
    aliases: bool,
    merge_keys: bool,
}

fn render_path(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => {
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
        }
    }
    s
}

impl Track {
    /// Count one value holding `text` bytes; an error once past the limits.
    fn count<E: de::Error>(&self, text: usize) -> Result<(), E> {
        let values = self.values.get() + 1;
        let text = self.text.get().saturating_add(text as u64);
        self.values.set(values);
        self.text.set(text);
        if values > MAX_VALUES {
            return Err(E::custom(self.too_large(format_args!(
                "more than {MAX_VALUES} values (keys, scalars, lists, maps; a simple target \
                 holds about 13)"
            ))));
        }
        if text > MAX_TEXT {
            return Err(E::custom(self.too_large(format_args!(
                "more than {} MiB of text (keys and strings)",
                MAX_TEXT >> 20
            ))));
        }
        Ok(())
    }

    /// The error of a document past a size limit (`what`: which one): the words for YAML
    /// aliases only where the text has an anchor.
    fn too_large(&self, what: fmt::Arguments) -> String {
        if self.aliases {
            format!(
                "the config expands to {what} once YAML aliases are expanded, past the size \
                 limit of a config file: an alias `*name` repeats everything its anchor `&name` \
                 holds; write such parts out or use fewer aliases"
            )
        } else {
            format!(
                "the file holds {what}: that is the size limit of a config file; is this the \
                 right file?"
            )
        }
    }

    fn push(&self, seg: Seg) {
        self.path.borrow_mut().push(seg);
    }

    fn pop(&self) {
        self.path.borrow_mut().pop();
    }

    /// Record where an error happened, unless a deeper place already did.
    fn mark<T, E>(&self, r: Result<T, E>) -> Result<T, E> {
        if r.is_err() {
            let mut at = self.error_path.borrow_mut();
            if at.is_none() {
                *at = Some(render_path(&self.path.borrow()));
            }
        }
        r
    }

    /// Record a key problem; past `max_keys`, only count it (`message` is not even worded).
    fn key_problem(&self, key: &str, message: impl FnOnce() -> String, occurrence: usize) {
        self.key_problem_at(key, key, message, occurrence);
    }

    /// [`Track::key_problem`] of a key found at the line of `line_key` (a key a merge key
    /// brought in is not in the map's lines: its `<<` is).
    fn key_problem_at(
        &self,
        key: &str,
        line_key: &str,
        message: impl FnOnce() -> String,
        occurrence: usize,
    ) {
        if self.keys.borrow().len() >= self.max_keys {
            self.more_keys.set(self.more_keys.get() + 1);
            return;
        }
        let mut segs = self.path.borrow().clone();
        let parent = render_path(&segs);
        segs.push(Seg::Key(line_key.to_string()));
        let short = shorten_key(key);
        let shown = if parent.is_empty() {
            short
        } else {
            format!("{parent}.{short}")
        };
        self.keys.borrow_mut().push(KeyProblem {
            path: render_path(&segs),
            shown,
            message: message(),
            occurrence,
        });
    }

    /// Note a key of the document's top-level map.
    fn top_key(&self, key: &str) {
        if !self.path.borrow().is_empty() {
            return;
        }
        let mut first = self.first_key.borrow_mut();
        if first.is_none() {
            *first = Some(key.to_string());
        }
        if key == "targets" {
            self.has_targets.set(true);
        }
    }
}

/// What the value should be, in the words of the file.
#[derive(Clone, Copy)]
enum Expect {
    /// Whatever the inner visitor says (options, identifiers, custom types).
    Inner,
    Bool,
    Int,
    Number,
    Str,
    List,
    Map,
    Struct(&'static str, &'static [&'static str]),
}

/// How a raw struct is described to people: its role in the file, never its Rust name.
fn describe_struct(name: &str, fields: &[&str]) -> String {
    let known = match name {
        "RawConfig" => "a map of settings (interval_seconds, targets, ...)",
        "RawIncluded" => "a map with `targets:` (an included file holds only a targets list)",
        "RawTarget" => "a target map (name, checks, action)",
        "RawCheck" => return format!("a check map (one of {})", super::validate::kinds_text()),
        "RawPolicy" => "a policy map (fail_threshold, restart_cooldown_seconds, ...)",
        "RawActionMap" => "a map with exec, systemd or docker",
        "RawAction" => "`none` or a map with exec, systemd or docker",
        "RawExec" => "an exec map (start, restart, ...)",
        "RawSystemd" => "a systemd map (unit, method)",
        "RawDockerAction" => "a docker map (container, method)",
        "RawSystem" => {
            "a map of limits, e.g. {max_load_per_core: 4.0, max_memory_used_percent: 95}"
        }
        "RawOnGiveUp" => "an on_give_up map (exec, timeout_seconds)",
        "RawNotifier" => "a notifier map (webhook or exec, events)",
        "RawWebhook" => "a webhook map (url, format, headers, ...)",
        "RawHeartbeat" => "a heartbeat map (url, send_start, timeout_seconds)",
        "RawMetrics" => "a metrics map (textfile, listen)",
        _ if fields.is_empty() => "a map",
        _ => return format!("a map ({})", fields.join(", ")),
    };
    known.to_string()
}

/// `struct RawX` in a message from elsewhere (serde's own wording) -> its description.
pub fn describe_struct_names(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find("struct Raw") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "struct ".len()..];
        let end = after
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(after.len());
        out.push_str(&describe_struct(&after[..end], &[]));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Expect::Inner => Ok(()),
            Expect::Bool => f.write_str("true or false"),
            Expect::Int => f.write_str("an integer"),
            Expect::Number => f.write_str("a number"),
            Expect::Str => f.write_str("a string"),
            Expect::List => f.write_str("a list"),
            Expect::Map => f.write_str("a map"),
            Expect::Struct(name, fields) => f.write_str(&describe_struct(name, fields)),
        }
    }
}

/// A list to write instead of the string `s`: `"/usr/sbin/nginx -c x"` ->
/// `["/usr/sbin/nginx", "-c", "x"]`; with shell syntax, `["/bin/sh", "-c", "..."]`.
fn list_example(s: &str) -> String {
    let quote = |p: &str| serde_json::to_string(p).unwrap_or_else(|_| format!("{p:?}"));
    let shell = s.contains(['\'', '"', '\\', '|', '&', ';', '<', '>', '$', '`', '*']);
    let parts: Vec<String> = if shell {
        vec![quote("/bin/sh"), quote("-c"), quote(s)]
    } else {
        s.split_whitespace().map(quote).collect()
    };
    format!("[{}]", parts.join(", "))
}

// ---------------------------------------------------------------------------------------------
// The deserializer
// ---------------------------------------------------------------------------------------------

struct De<'t, D> {
    inner: D,
    track: &'t Track,
}

impl<'t, D> De<'t, D> {
    fn vis<V>(&self, inner: V, expect: Expect) -> Vis<'t, V> {
        Vis {
            inner,
            track: self.track,
            expect,
        }
    }
}

macro_rules! forward {
    ($($method:ident => $expect:expr),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                let vis = self.vis(visitor, $expect);
                self.inner.$method(vis)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for De<'_, D> {
    type Error = D::Error;

    forward! {
        deserialize_any => Expect::Inner,
        deserialize_bool => Expect::Bool,
        deserialize_i8 => Expect::Int,
        deserialize_i16 => Expect::Int,
        deserialize_i32 => Expect::Int,
        deserialize_i64 => Expect::Int,
        deserialize_u8 => Expect::Int,
        deserialize_u16 => Expect::Int,
        deserialize_u32 => Expect::Int,
        deserialize_u64 => Expect::Int,
        deserialize_u128 => Expect::Int,
        deserialize_f32 => Expect::Number,
        deserialize_f64 => Expect::Number,
        deserialize_char => Expect::Str,
        deserialize_str => Expect::Str,
        deserialize_string => Expect::Str,
        deserialize_bytes => Expect::Inner,
        deserialize_byte_buf => Expect::Inner,
        deserialize_option => Expect::Inner,
        deserialize_unit => Expect::Inner,
        deserialize_map => Expect::Map,
        deserialize_identifier => Expect::Inner,
        deserialize_ignored_any => Expect::Inner,
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let vis = self.vis(visitor, Expect::Int);
        if self.track.ints_via_any {
            self.inner.deserialize_any(vis)
        } else {
            self.inner.deserialize_i128(vis)
        }
    }

    /// Through `deserialize_any`, so that a string where a list belongs can be answered with
    /// the list to write (the parsers report a wrong type before the visitor sees the value).
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let vis = self.vis(visitor, Expect::List);
        self.inner.deserialize_any(vis)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let vis = self.vis(visitor, Expect::Inner);
        self.inner.deserialize_unit_struct(name, vis)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let vis = self.vis(visitor, Expect::Inner);
        self.inner.deserialize_newtype_struct(name, vis)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let vis = self.vis(visitor, Expect::List);
        self.inner.deserialize_tuple(len, vis)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let vis = self.vis(visitor, Expect::List);
        self.inner.deserialize_tuple_struct(name, len, vis)
    }

    /// Through `deserialize_any`: the visitor learns the keys of the struct (so that every
    /// unknown key is reported), and a type that is a map or a word (`action: none`) can be
    /// read like any other struct.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let vis = self.vis(visitor, Expect::Struct(name, fields));
        self.inner.deserialize_any(vis)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let vis = self.vis(visitor, Expect::Inner);
        self.inner.deserialize_enum(name, variants, vis)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

// ---------------------------------------------------------------------------------------------
// The visitor: counts every value, words what was expected
// ---------------------------------------------------------------------------------------------

struct Vis<'t, V> {
    inner: V,
    track: &'t Track,
    expect: Expect,
}

impl<'de, V: Visitor<'de>> Vis<'_, V> {
    /// A single value where a list belongs: the list to write instead (`[0]`, `["a", "b"]`),
    /// when a list of such values is what this key takes (tried: the value as the list's one
    /// element); else the plain wrong-type error.
    fn not_a_list<T, E>(self, v: T, unexpected: de::Unexpected, example: &str) -> E
    where
        T: de::IntoDeserializer<'de, E>,
        E: de::Error,
    {
        let plain = E::invalid_type(unexpected, &"a list");
        let one = de::value::SeqDeserializer::<_, E>::new(std::iter::once(v));
        match self.inner.visit_seq(one) {
            Ok(_) => E::custom(format_args!("{plain}, e.g. {example}")),
            Err(_) => plain,
        }
    }
}

impl<V> Vis<'_, V> {
    fn is_list(&self) -> bool {
        matches!(self.expect, Expect::List)
    }

    fn is_int(&self) -> bool {
        matches!(self.expect, Expect::Int)
    }
}

/// Beyond i128: no setting takes such a number (the parsers hand it over as u128 or a float).
fn too_large_number<E: de::Error>(v: impl fmt::Display) -> E {
    E::custom(format_args!(
        "{v} is out of range: no setting takes a number this large"
    ))
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Vis<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.expect {
            Expect::Inner => self.inner.expecting(f),
            e => fmt::Display::fmt(&e, f),
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.track.count(0)?;
        self.inner.visit_bool(v)
    }

    fn visit_i8<E: de::Error>(self, v: i8) -> Result<Self::Value, E> {
        self.visit_i64(i64::from(v))
    }

    fn visit_i16<E: de::Error>(self, v: i16) -> Result<Self::Value, E> {
        self.visit_i64(i64::from(v))
    }

    fn visit_i32<E: de::Error>(self, v: i32) -> Result<Self::Value, E> {
        self.visit_i64(i64::from(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.track.count(0)?;
        if self.is_list() {
            return Err(self.not_a_list(v, de::Unexpected::Signed(v), &format!("[{v}]")));
        }
        self.inner.visit_i64(v)
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        self.track.count(0)?;
        self.inner.visit_i128(v)
    }

    fn visit_u8<E: de::Error>(self, v: u8) -> Result<Self::Value, E> {
        self.visit_u64(u64::from(v))
    }

    fn visit_u16<E: de::Error>(self, v: u16) -> Result<Self::Value, E> {
        self.visit_u64(u64::from(v))
    }

    fn visit_u32<E: de::Error>(self, v: u32) -> Result<Self::Value, E> {
        self.visit_u64(u64::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.track.count(0)?;
        if self.is_list() {
            return Err(self.not_a_list(v, de::Unexpected::Unsigned(v), &format!("[{v}]")));
        }
        self.inner.visit_u64(v)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        self.track.count(0)?;
        if self.is_int() && i128::try_from(v).is_err() {
            return Err(too_large_number(v));
        }
        self.inner.visit_u128(v)
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<Self::Value, E> {
        self.visit_f64(f64::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.track.count(0)?;
        // JSON hands over an integer beyond u64 as a float
        if self.is_int() && v.fract() == 0.0 && v.abs() >= 9.2e18 {
            return Err(E::custom(
                "is out of range: no setting takes a number this large",
            ));
        }
        self.inner.visit_f64(v)
    }

    fn visit_char<E: de::Error>(self, v: char) -> Result<Self::Value, E> {
        self.track.count(v.len_utf8())?;
        self.inner.visit_char(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.track.count(v.len())?;
        if self.is_list() {
            return Err(self.not_a_list(v, de::Unexpected::Str(v), &list_example(v)));
        }
        self.inner.visit_str(v)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.track.count(v.len())?;
        if self.is_list() {
            return Err(self.not_a_list(v, de::Unexpected::Str(v), &list_example(v)));
        }
        self.inner.visit_borrowed_str(v)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.track.count(v.len())?;
        if self.is_list() {
            return Err(self.not_a_list(v.as_str(), de::Unexpected::Str(&v), &list_example(&v)));
        }
        self.inner.visit_string(v)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        self.track.count(v.len())?;
        self.inner.visit_bytes(v)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        self.track.count(v.len())?;
        self.inner.visit_borrowed_bytes(v)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        self.track.count(v.len())?;
        self.inner.visit_byte_buf(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.track.count(0)?;
        self.inner.visit_none()
    }

    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
        self.inner.visit_some(De {
            inner: d,
            track: self.track,
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.track.count(0)?;
        if matches!(self.expect, Expect::Struct(..)) {
            // `key:` with nothing after it, where a map belongs: an empty map (as before)
            return self.inner.visit_map(EmptyMap(std::marker::PhantomData));
        }
        self.inner.visit_unit()
    }

    fn visit_newtype_struct<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
        self.inner.visit_newtype_struct(De {
            inner: d,
            track: self.track,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.track.count(0)?;
        if matches!(self.expect, Expect::Struct(..)) {
            // serde's structs also take a list of their fields in order: not in a config
            return Err(de::Error::invalid_type(de::Unexpected::Seq, &self));
        }
        self.inner.visit_seq(Seq {
            inner: seq,
            track: self.track,
            index: 0,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.track.count(0)?;
        let fields = match self.expect {
            Expect::Struct(_, fields) => Some(fields),
            _ => None,
        };
        self.inner.visit_map(Map {
            inner: map,
            track: self.track,
            fields,
            seen: HashSet::new(),
            current: None,
            merged: VecDeque::new(),
            own_done: false,
            pending: None,
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        // no raw type is an enum; counted, not followed further
        self.track.count(0)?;
        self.inner.visit_enum(data)
    }
}

// ---------------------------------------------------------------------------------------------
// Lists and maps: the path of each element, every key read here
// ---------------------------------------------------------------------------------------------

struct Seed<'t, S> {
    inner: S,
    track: &'t Track,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(De {
            inner: d,
            track: self.track,
        })
    }
}

struct Seq<'t, A> {
    inner: A,
    track: &'t Track,
    index: usize,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.track.push(Seg::Index(self.index));
        let r = self.track.mark(self.inner.next_element_seed(Seed {
            inner: seed,
            track: self.track,
        }));
        self.track.pop();
        self.index += 1;
        r
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct Map<'t, A> {
    inner: A,
    track: &'t Track,
    /// The keys of the struct this map is read into; None for free-form maps (env, headers).
    fields: Option<&'static [&'static str]>,
    seen: HashSet<String>,
    current: Option<String>,
    /// The entries the map's merge keys (`<<`) bring in, in order of precedence: read once the
    /// map's own keys are (each one not already given).
    merged: VecDeque<(String, Value)>,
    /// The map's own keys have all been read.
    own_done: bool,
    /// The value of the merged key handed out last.
    pending: Option<Value>,
}

/// The YAML merge key.
const MERGE_KEY: &str = "<<";

/// The start of a top-level key that is no setting and is ignored (as docker compose does): a
/// place for the anchors merge keys name (`x-web: &web {...}`).
pub const EXTENSION: &str = "x-";

/// Reads a key as text (any scalar key: YAML allows `80: x`).
struct KeyText<'t> {
    track: &'t Track,
}

impl<'de> DeserializeSeed<'de> for KeyText<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyText<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.track.count(v.len())?;
        Ok(v.to_string())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        self.visit_str(&v.to_string())
    }
}

/// The error of a key handed to the raw struct's field visitor: an unknown key is recorded,
/// anything else goes on as the parser's error.
#[derive(Debug)]
enum KeyError {
    Unknown(&'static [&'static str]),
    Other(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            KeyError::Unknown(_) => f.write_str("unknown key"),
            KeyError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for KeyError {}

impl de::Error for KeyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        KeyError::Other(msg.to_string())
    }

    fn unknown_field(_field: &str, expected: &'static [&'static str]) -> Self {
        KeyError::Unknown(expected)
    }
}

/// A key already read, handed to the struct's (or map's) own key visitor.
struct KeyDe<'a>(&'a str);

impl<'de> Deserializer<'de> for KeyDe<'_> {
    type Error = KeyError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, KeyError> {
        visitor.visit_str(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            if self.own_done {
                return self.next_merged_key(seed);
            }
            let key = self
                .track
                .mark(self.inner.next_key_seed(KeyText { track: self.track }))?;
            let Some(key) = key else {
                self.own_done = true;
                continue;
            };
            if key == MERGE_KEY && self.track.merge_keys {
                // several `<<` in a map are taken (as PyYAML and editors take them), the
                // first one first
                self.read_merge()?;
                continue;
            }
            if self.fields.is_some()
                && key.starts_with(EXTENSION)
                && self.track.path.borrow().is_empty()
            {
                // a top-level extension key: a place for anchors of templates, not a setting
                self.seen.insert(key);
                self.skip_value()?;
                continue;
            }
            if self.fields.is_some() {
                self.track.top_key(&key);
            }
            if self.seen.contains(&key) {
                self.track.key_problem(
                    &key,
                    || {
                        let k = quote_key(&key);
                        format!("{k} is given twice in the same map: keep one")
                    },
                    1,
                );
                self.skip_value()?;
                continue;
            }
            self.seen.insert(key.clone());
            if let Some(fields) = self.fields {
                if !fields.contains(&key.as_str()) {
                    self.track
                        .key_problem(&key, || unknown_key_message(&key, fields), 0);
                    self.skip_value()?;
                    continue;
                }
            }
            return match seed.deserialize(KeyDe(&key)) {
                Ok(v) => {
                    self.current = Some(key);
                    Ok(Some(v))
                }
                // a struct reached without its field list (not through `deserialize_struct`):
                // its seed is spent, so reading stops here, with the key reported
                Err(KeyError::Unknown(fields)) => {
                    self.track
                        .key_problem(&key, || unknown_key_message(&key, fields), 0);
                    self.track.mark(Err(de::Error::custom(STOPPED)))
                }
                Err(KeyError::Other(m)) => self.track.mark(Err(de::Error::custom(m))),
            };
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let key = self.current.take().unwrap_or_default();
        self.track.push(Seg::Key(key));
        let seed = Seed {
            inner: seed,
            track: self.track,
        };
        let r = match self.pending.take() {
            // a merged key's value, read from what its `<<` held (counted again: each merge
            // expands it, as an alias does)
            Some(v) => seed.deserialize(v).map_err(de::Error::custom),
            None => self.inner.next_value_seed(seed),
        };
        let r = self.track.mark(r);
        self.track.pop();
        r
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> Map<'_, A> {
    /// Skip the value of a key that is reported (its aliases are not followed).
    fn skip_value(&mut self) -> Result<(), A::Error> {
        self.track
            .mark(self.inner.next_value::<IgnoredAny>())
            .map(|_| ())
    }

    /// The value of a merge key `<<`: a map, or a list of maps (an earlier one overrides a
    /// later one), whose entries are queued. Read through the adapter, so that it counts
    /// towards the limits and its own merge keys are applied.
    fn read_merge(&mut self) -> Result<(), A::Error> {
        self.track.push(Seg::Key(MERGE_KEY.to_string()));
        let r = self
            .inner
            .next_value_seed(Seed {
                inner: std::marker::PhantomData::<Value>,
                track: self.track,
            })
            .and_then(|v| {
                let maps = match v {
                    Value::Mapping(m) => vec![m],
                    Value::Sequence(items) => items
                        .into_iter()
                        .map(|item| match item {
                            Value::Mapping(m) => Ok(m),
                            _ => Err(de::Error::custom(MERGE_TAKES)),
                        })
                        .collect::<Result<Vec<_>, A::Error>>()?,
                    _ => return Err(de::Error::custom(MERGE_TAKES)),
                };
                for m in maps {
                    for (k, v) in m {
                        // keys are read as text (`KeyText`): never anything else here
                        let k = match k {
                            Value::String(k) => k,
                            _ => return Err(de::Error::custom(MERGE_TAKES)),
                        };
                        self.merged.push_back((k, v));
                    }
                }
                Ok(())
            });
        let r = self.track.mark(r);
        self.track.pop();
        r
    }

    /// The next merged entry whose key the map does not give itself (nor an earlier merge).
    fn next_merged_key<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some((key, value)) = self.merged.pop_front() {
            if !self.seen.insert(key.clone()) {
                continue;
            }
            if self.fields.is_some() {
                self.track.top_key(&key);
            }
            if let Some(fields) = self.fields {
                if !fields.contains(&key.as_str()) {
                    self.track.key_problem_at(
                        &key,
                        MERGE_KEY,
                        || {
                            format!(
                                "{} (brought in by the merge key `<<`)",
                                unknown_key_message(&key, fields)
                            )
                        },
                        0,
                    );
                    continue;
                }
            }
            return match seed.deserialize(KeyDe(&key)) {
                Ok(v) => {
                    self.current = Some(key);
                    self.pending = Some(value);
                    Ok(Some(v))
                }
                Err(KeyError::Unknown(fields)) => {
                    self.track.key_problem_at(
                        &key,
                        MERGE_KEY,
                        || {
                            format!(
                                "{} (brought in by the merge key `<<`)",
                                unknown_key_message(&key, fields)
                            )
                        },
                        0,
                    );
                    self.track.mark(Err(de::Error::custom(STOPPED)))
                }
                Err(KeyError::Other(m)) => self.track.mark(Err(de::Error::custom(m))),
            };
        }
        Ok(None)
    }
}

/// What a merge key takes.
const MERGE_TAKES: &str = "the merge key `<<` takes a map or a list of maps, e.g. `<<: *defaults` (with `defaults: &defaults {...}` earlier in the file) or `<<: [*a, *b]`";

/// A map with nothing in it: what an empty value (`key:` with nothing after it) is, where a
/// map is expected.
struct EmptyMap<E>(std::marker::PhantomData<E>);

impl<'de, E: de::Error> MapAccess<'de> for EmptyMap<E> {
    type Error = E;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        _: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("no value in an empty map"))
    }
}

// ---------------------------------------------------------------------------------------------
// Unknown keys: the key the user probably meant
// ---------------------------------------------------------------------------------------------

/// "unknown field `fail_treshold`: did you mean `fail_threshold`?"; without a likely key, the
/// keys this map takes (a check map's are many: its kinds are named instead).
pub fn unknown_key_message(key: &str, fields: &[&str]) -> String {
    let q = quote_key(key);
    if let Some(s) = suggest(key, fields) {
        return format!("unknown field {q}: did you mean `{s}`?");
    }
    // a check's map (known by a kind it takes, not by its size: the top level grows too)
    if fields.contains(&"process_name") {
        return format!(
            "unknown field {q}: a check takes one kind ({}), the modifiers of that kind and timeout_seconds",
            super::validate::kinds_text()
        );
    }
    // `$schema` is for editors (`schema.rs`): taken, not a setting to offer
    let list: Vec<String> = fields
        .iter()
        .filter(|f| **f != "$schema")
        .map(|f| format!("`{f}`"))
        .collect();
    format!("unknown field {q}, expected one of {}", list.join(", "))
}

pub(in crate::config) use crate::util::suggest;

/// The keys a raw struct takes, as serde knows them (for types read through something other
/// than `deserialize_struct`, which hands them over itself).
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe;
    #[derive(Debug)]
    struct Fields(&'static [&'static str]);
    impl fmt::Display for Fields {
        fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Fields {}
    impl de::Error for Fields {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Fields(&[])
        }
    }
    impl<'de> Deserializer<'de> for Probe {
        type Error = Fields;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
            Err(Fields(&[]))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Fields> {
            Err(Fields(fields))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    match T::deserialize(Probe) {
        Ok(_) => &[],
        Err(Fields(f)) => f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::{RawActionMap, RawConfig, RawPolicy};

    const OPTS: Options = Options {
        json: false,
        aliases: true,
        merge_keys: true,
        max_keys: usize::MAX,
    };

    fn read(yaml: &str) -> Result<RawConfig, String> {
        deserialize(serde_yaml::Deserializer::from_str(yaml), OPTS).map_err(|f| {
            let mut out: Vec<String> = f
                .keys
                .iter()
                .map(|k| format!("{}: {}", k.path, k.message))
                .collect();
            if let Some((path, e)) = f.error {
                out.push(format!("{path}: {e}"));
            }
            out.join("\n")
        })
    }

    #[test]
    fn suggestions() {
        let policy = fields_of::<RawPolicy>();
        assert_eq!(suggest("fail_treshold", policy), Some("fail_threshold"));
        assert_eq!(suggest("FAIL-THRESHOLD", policy), Some("fail_threshold"));
        assert_eq!(
            suggest("cooldown", policy),
            Some("restart_cooldown_seconds")
        );
        let check = ["tcp_port", "timeout_seconds", "process_name", "pid_file"];
        assert_eq!(suggest("tcp", &check), Some("tcp_port"));
        assert_eq!(suggest("timout", &check), Some("timeout_seconds"));
        assert_eq!(suggest("timeout", &check), Some("timeout_seconds"));
        assert_eq!(suggest("zzz", &check), None);
        assert_eq!(suggest("", &check), None);
    }

    #[test]
    fn fields_of_reads_serde_own_list() {
        assert_eq!(fields_of::<RawActionMap>(), ["exec", "systemd", "docker"]);
        assert!(fields_of::<String>().is_empty());
    }

    #[test]
    fn struct_names_are_described() {
        assert_eq!(
            describe_struct_names("expected struct RawSystem, got x"),
            "expected a map of limits, e.g. {max_load_per_core: 4.0, max_memory_used_percent: 95}, got x"
        );
        assert_eq!(describe_struct_names("struct RawNew"), "a map");
        assert_eq!(describe_struct("RawNew", &["a", "b"]), "a map (a, b)");
        for name in [
            "RawConfig",
            "RawTarget",
            "RawCheck",
            "RawPolicy",
            "RawActionMap",
            "RawAction",
            "RawExec",
            "RawSystemd",
            "RawDockerAction",
            "RawSystem",
            "RawOnGiveUp",
            "RawNotifier",
            "RawWebhook",
            "RawHeartbeat",
            "RawMetrics",
            "RawIncluded",
        ] {
            let d = describe_struct(name, &[]);
            assert!(!d.contains("Raw") && d.len() > 5, "{name}: {d}");
        }
    }

    #[test]
    fn every_unknown_and_repeated_key_is_collected_with_its_path() {
        let e = read(
            "targets:\n  - name: a\n    nmae: b\n    checks: [{tcp_port: 1, tcp_port: 2}]\n    action: {exec: {start: [x], strt: [y]}}\nfoo: 1\n",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "targets[0].nmae: unknown field `nmae`: did you mean `name`?\n\
             targets[0].checks[0].tcp_port: `tcp_port` is given twice in the same map: keep one\n\
             targets[0].action.exec.strt: unknown field `strt`: did you mean `start`?\n\
             foo: unknown field `foo`, expected one of `interval_seconds`, `timeout_seconds`, `log_level`, `log_checks`, `state_file`, `lock_file`, `max_parallel`, `systemctl_path`, `docker_socket`, `default_policy`, `targets`, `reminder_every_seconds`, `notify`, `heartbeat`, `metrics`, `include`"
        );
    }

    #[test]
    fn expansion_is_bounded_whatever_the_shape() {
        // nested lists of lists: the classic billion laughs on a free-form value
        let mut yaml = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            yaml.push_str(&format!(
                "{}: &{} [{}]\n",
                (b'a' + i) as char,
                (b'a' + i) as char,
                vec![format!("*{}", (b'a' + i - 1) as char); 10].join(", ")
            ));
        }
        let e = deserialize::<_, std::collections::BTreeMap<String, serde_json::Value>>(
            serde_yaml::Deserializer::from_str(&yaml),
            OPTS,
        )
        .map(|_| ())
        .expect_err("bounded");
        // whichever comes first: our count, or the parser's own limit on alias jumps
        let (_, e) = e.error.expect("an error");
        let e = e.to_string();
        assert!(
            e.contains("more than 500000 values") || e.contains("repetition limit exceeded"),
            "{e}"
        );
        // wide rather than deep: our count
        let wide = format!(
            "a: &a [{}]\nb: [{}]\n",
            vec!["x"; 1000].join(", "),
            vec!["*a"; 1000].join(", ")
        );
        let e = deserialize::<_, std::collections::BTreeMap<String, serde_json::Value>>(
            serde_yaml::Deserializer::from_str(&wide),
            OPTS,
        )
        .map(|_| ())
        .expect_err("bounded");
        let (_, e) = e.error.expect("an error");
        assert!(e.to_string().contains("more than 500000 values"), "{e}");
        // long strings: the text budget
        let big = "y".repeat(1 << 20);
        let yaml = format!("a: &a \"{big}\"\nb: [{}]\n", ["*a"; 10].join(", "));
        let e = deserialize::<_, std::collections::BTreeMap<String, serde_json::Value>>(
            serde_yaml::Deserializer::from_str(&yaml),
            OPTS,
        )
        .map(|_| ())
        .expect_err("bounded");
        let (_, e) = e.error.expect("an error");
        assert!(e.to_string().contains("MiB of text"), "{e}");
    }

    /// A map's own keys override what `<<` merges, an earlier map of the list a later one; a
    /// template's own merge key is applied before it is merged; in JSON `<<` is a key.
    #[test]
    fn merge_keys_override_in_order() {
        type Maps = std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>>;
        let yaml = "a: &a {x: 1, y: 1}\nb: &b {x: 2, y: 2, z: 2}\nc: {<<: [*a, *b], y: 3}\nd: &d {<<: *b, w: 4}\ne: {<<: *d, <<: {v: 5}, z: 6}\n";
        let m: Maps = deserialize(serde_yaml::Deserializer::from_str(yaml), OPTS)
            .map_err(|f| f.error.map(|(p, e)| format!("{p}: {e}")))
            .expect("merges");
        let of = |k: &str| {
            m[k].iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(of("c"), "x=1 y=3 z=2");
        assert_eq!(of("d"), "w=4 x=2 y=2 z=2");
        assert_eq!(of("e"), "v=5 w=4 x=2 y=2 z=6");
        let json = Options {
            json: true,
            merge_keys: false,
            ..OPTS
        };
        let m: std::collections::BTreeMap<String, serde_json::Value> = deserialize(
            &mut serde_json::Deserializer::from_str(r#"{"<<": {"x": 1}}"#),
            json,
        )
        .map_err(|_| ())
        .expect("JSON");
        assert_eq!(m["<<"]["x"], 1);
    }

    #[test]
    fn a_list_example_is_what_to_write() {
        assert_eq!(
            list_example("/usr/sbin/nginx -c x"),
            r#"["/usr/sbin/nginx", "-c", "x"]"#
        );
        assert_eq!(
            list_example("curl -fsS http://x | grep ok"),
            r#"["/bin/sh", "-c", "curl -fsS http://x | grep ok"]"#
        );
    }
}
