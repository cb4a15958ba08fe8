//! The log callback: a hand-written `tracing` subscriber that formats each event and hands
//! it to C.

use std::ffi::{c_char, c_void, CString};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::{Interest, Subscriber};
use tracing::{Event, Level, Metadata};

use crate::error::{fail, invalid_parameter, lnshard_result};

/// How severe a log message is. The numbers are part of the ABI and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum lnshard_log_level {
    /// Errors.
    Error = 1,
    /// Warnings (a slow peer disconnected, a result nobody owns).
    Warn = 2,
    /// Engine start and stop.
    Info = 3,
    /// Every error returned across the C boundary, with its message.
    Debug = 4,
    /// Per-message detail (cross-shard forwards).
    Trace = 5,
}

/// A `lnshard_log_level` as a number crossing the boundary: the header declares it
/// `lnshard_log_level` (cbindgen.toml renames it; the same 32 bits), while Rust reads a
/// plain `u32`, so that a number C passes which names no level is checked, not undefined
/// behaviour.
pub type lnshard_log_level_number = u32;

/// Receives one log message: `level` is a `lnshard_log_level`, `target` the module that
/// logged, `message` the text with its fields (`key=value`); both strings are
/// NUL-terminated and valid only during the call. Called from any engine thread, possibly
/// from several at once: it must be thread-safe, and must not call back into lnshard.
pub type lnshard_log_callback = Option<
    extern "C" fn(
        userdata: *mut c_void,
        level: lnshard_log_level_number,
        target: *const c_char,
        message: *const c_char,
    ),
>;

#[derive(Clone, Copy)]
struct Sink {
    callback: extern "C" fn(*mut c_void, u32, *const c_char, *const c_char),
    userdata: usize,
    max_level: u32,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static INSTALLED: OnceLock<bool> = OnceLock::new();

fn level_number(level: &Level) -> u32 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        _ => 5,
    }
}

/// The subscriber: spans are only numbered (their fields are not kept); each event is
/// formatted and handed to the callback set by `lnshard_set_log_callback`.
struct CallbackSubscriber {
    next_span: AtomicU64,
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

fn sink() -> Option<Sink> {
    *SINK.read().unwrap_or_else(|p| p.into_inner())
}

impl Subscriber for CallbackSubscriber {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The callback and its level change at run time: ask every time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        sink().is_some_and(|s| level_number(metadata.level()) <= s.max_level)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let Some(sink) = sink() else { return };
        let level = level_number(event.metadata().level());
        if level > sink.max_level {
            return;
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let message = CString::new(fields.0.replace('\0', "\\0")).unwrap_or_default();
        let target =
            CString::new(event.metadata().target().replace('\0', "\\0")).unwrap_or_default();
        (sink.callback)(
            sink.userdata as *mut c_void,
            level,
            target.as_ptr(),
            message.as_ptr(),
        );
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Sends lnshard's log messages at `max_level` (a `lnshard_log_level`) and more severe to
/// `callback`, with `userdata` passed back on each call; a NULL `callback` stops logging.
///
/// The first call installs lnshard's subscriber as the process's global `tracing`
/// subscriber; if the process already has one, `LNSHARD_RESULT_LOGGER_UNAVAILABLE`. Later
/// calls replace the callback. Safe from any thread; `userdata` must stay valid (and be
/// usable from any thread) until the callback is replaced.
#[no_mangle]
pub extern "C" fn lnshard_set_log_callback(
    callback: lnshard_log_callback,
    userdata: *mut c_void,
    max_level: lnshard_log_level_number,
) -> lnshard_result {
    ffi_panic_boundary! {
        if !(lnshard_log_level::Error as u32..=lnshard_log_level::Trace as u32).contains(&max_level) {
            return invalid_parameter(format!(
                "max_level {max_level} is not a lnshard_log_level (1 to 5)"
            ));
        }
        let installed = *INSTALLED.get_or_init(|| {
            tracing::subscriber::set_global_default(CallbackSubscriber {
                next_span: AtomicU64::new(1),
            })
            .is_ok()
        });
        if !installed {
            return fail(
                lnshard_result::LoggerUnavailable,
                "another tracing subscriber is the global default: callback not installed",
            );
        }
        *SINK.write().unwrap_or_else(|p| p.into_inner()) = callback.map(|callback| Sink {
            callback,
            userdata: userdata as usize,
            max_level,
        });
        lnshard_result::Ok
    }
}
