//! Handles: how a value handed to C is named, and how the name is checked on its way back.
//!
//! # Design
//!
//! A handle C receives (`lnshard_engine *`, `lnshard_bytes *`, ...) is not the address of the
//! Rust value: it is a *token*, `generation << INDEX_BITS | (slot + 1)`, naming a slot of one
//! process-wide registry. The slot holds the value's type tag (a distinct 64-bit constant per
//! handle type, [`HandleKind`]), its generation and the value's address. Every entry point
//! resolves the token through the registry (one macro, `try_handle!`) before it touches
//! anything behind it:
//!
//! * a slot that is free, or whose generation differs (the handle was freed, and the slot
//!   perhaps reused by a newer handle), or an index no slot has (a pointer lnshard never
//!   handed out) is `LNSHARD_RESULT_INVALID_HANDLE`, "not a live lnshard_engine";
//! * a live slot of another type is `LNSHARD_RESULT_INVALID_HANDLE`, "a lnshard_bytes, not a
//!   lnshard_engine";
//! * NULL is `LNSHARD_RESULT_NULL_PARAMETER`, as before.
//!
//! Nothing C passes is ever dereferenced: only addresses the registry holds for live values
//! are. So using a handle after its `_free`, passing one type for another, or passing a stray
//! pointer is detected without reading freed or foreign memory, even after the allocator
//! reused the freed memory and even after a newer handle took the freed slot (its generation
//! differs). This is stronger than a magic number in the value's first bytes, which can only
//! be read through the very pointer that may be dangling, and which a reused allocation
//! overwrites with a valid-looking header.
//!
//! What it does not make defined: freeing a handle while another thread is still inside a
//! call on it (the call holds a reference outside the registry's lock), and freeing a handle
//! twice. Both stay undefined behaviour in the documented contract, as in rustls-ffi; this
//! version happens to detect a second `_free` and do nothing, which a caller must not rely
//! on. A token whose 32-bit generation wrapped around (a slot reused 2^32 times while a
//! stale copy was kept) would be taken for the live handle: it still names a live value of
//! the right type, so even then nothing is read out of bounds.
//!
//! Cost: one uncontended `RwLock` read and a vector index per call (tens of nanoseconds),
//! a write lock per handle created or freed; 24 bytes per slot, slots reused.
//!
//! The registry stores each address XOR-ed with a constant, so that leak checkers scanning
//! memory for pointers (valgrind, LeakSanitizer) still report a handle the application never
//! freed as definitely lost rather than reachable from the registry.

use std::marker::PhantomData;
use std::sync::{PoisonError, RwLock};

/// The type of a handle: one distinct 64-bit tag per opaque type C can hold.
#[repr(u64)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandleKind {
    /// `lnshard_engine`.
    Engine = 0x4c4e_5348_454e_4731,
    /// `lnshard_bytes`.
    Bytes = 0x4c4e_5348_4259_5432,
    // 0x4c4e_5348_504f_5533 was `lnshard_peer_outputs` (the plaintext path, removed): never
    // reused.
    /// `lnshard_event`.
    Event = 0x4c4e_5348_4556_5434,
    /// `lnshard_channel_list`.
    ChannelList = 0x4c4e_5348_434c_5335,
    /// `lnshard_store_sink`.
    StoreSink = 0x4c4e_5348_534b_4e36,
    /// `lnshard_balance_list`.
    BalanceList = 0x4c4e_5348_424c_5337,
    /// `lnshard_wallet_sink`.
    WalletSink = 0x4c4e_5348_5753_4b38,
    /// `lnshard_bumper`.
    Bumper = 0x4c4e_5348_4250_5239,
}

impl HandleKind {
    /// The C type's name, as messages give it.
    pub(crate) fn c_name(self) -> &'static str {
        match self {
            HandleKind::Engine => "lnshard_engine",
            HandleKind::Bytes => "lnshard_bytes",
            HandleKind::Event => "lnshard_event",
            HandleKind::ChannelList => "lnshard_channel_list",
            HandleKind::StoreSink => "lnshard_store_sink",
            HandleKind::BalanceList => "lnshard_balance_list",
            HandleKind::WalletSink => "lnshard_wallet_sink",
            HandleKind::Bumper => "lnshard_bumper",
        }
    }
}

/// An opaque C type and the Rust value behind it.
pub(crate) trait Castable {
    /// Its tag.
    const KIND: HandleKind;
    /// The Rust value a handle of this type names.
    type Rust;
}

/// Bits of a token that carry the slot (the rest carry the generation).
const INDEX_BITS: u32 = if usize::BITS >= 64 { 32 } else { 20 };
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: u64 = (1 << (usize::BITS - INDEX_BITS)) - 1;
/// XOR-ed into every stored address (see the module's documentation).
const ADDRESS_MASK: usize = usize::MAX / 0xff * 0xa5;

struct Slot {
    /// Bumped when the slot's handle is freed.
    generation: u64,
    /// The type of the handle that lives here, or lived here last.
    kind: HandleKind,
    /// The value's address XOR `ADDRESS_MASK`; 0 when the slot is free.
    masked: usize,
}

struct Registry {
    slots: Vec<Slot>,
    /// Free slots, reused last-freed first (their generation tells the handles apart).
    free: Vec<usize>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    slots: Vec::new(),
    free: Vec::new(),
});

fn token(index: usize, generation: u64) -> usize {
    ((generation as usize) << INDEX_BITS) | (index + 1)
}

/// The slot and generation a token names (`None` for a token no slot can have).
fn untoken(token: usize) -> Option<(usize, u64)> {
    let index = (token & INDEX_MASK).checked_sub(1)?;
    Some((index, (token >> INDEX_BITS) as u64))
}

/// Registers the value at `address` as a live handle of `kind`; returns its token.
fn register(kind: HandleKind, address: usize) -> usize {
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    let masked = address ^ ADDRESS_MASK;
    if let Some(index) = registry.free.pop() {
        let slot = &mut registry.slots[index];
        slot.kind = kind;
        slot.masked = masked;
        return token(index, slot.generation);
    }
    let index = registry.slots.len();
    assert!(
        index < INDEX_MASK,
        "more than {INDEX_MASK} lnshard handles alive at once"
    );
    registry.slots.push(Slot {
        generation: 1,
        kind,
        masked,
    });
    token(index, 1)
}

/// Why a handle parameter does not name a live handle of the wanted type
/// (`LNSHARD_RESULT_INVALID_HANDLE`): its text names the parameter, the wanted type and,
/// for a live handle of another type, that type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum HandleError {
    /// A live handle of another type.
    WrongType {
        /// The parameter.
        param: &'static str,
        /// The type the function takes.
        want: HandleKind,
        /// The type of the handle given.
        given: HandleKind,
    },
    /// A handle of the wanted type that was freed (its slot is not reused yet).
    Freed {
        /// The parameter.
        param: &'static str,
        /// The type the function takes.
        want: HandleKind,
    },
    /// Freed already (its slot perhaps reused), or never handed out by lnshard.
    NotLive {
        /// The parameter.
        param: &'static str,
        /// The type the function takes.
        want: HandleKind,
    },
}

impl std::fmt::Display for HandleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandleError::WrongType { param, want, given } => write!(
                f,
                "parameter {param} is a {}, not a {}",
                given.c_name(),
                want.c_name()
            ),
            HandleError::Freed { param, want } => write!(
                f,
                "parameter {param} is not a live {}: it was freed",
                want.c_name()
            ),
            HandleError::NotLive { param, want } => write!(
                f,
                "parameter {param} is not a live {}: freed already, or never handed out by \
                 lnshard",
                want.c_name()
            ),
        }
    }
}

impl std::error::Error for HandleError {}

/// Why a token does not name a live handle of the wanted type.
fn invalid(
    registry: &Registry,
    token: usize,
    want: HandleKind,
    param: &'static str,
) -> HandleError {
    let slot = untoken(token).and_then(|(index, generation)| {
        let slot = registry.slots.get(index)?;
        (slot.generation == generation || (slot.masked == 0 && slot.generation == generation + 1))
            .then_some((slot, slot.generation == generation))
    });
    match slot {
        Some((slot, true)) if slot.masked != 0 => HandleError::WrongType {
            param,
            want,
            given: slot.kind,
        },
        Some((slot, false)) if slot.kind == want => HandleError::Freed { param, want },
        _ => HandleError::NotLive { param, want },
    }
}

/// The address of the live value of type `want` that `token` names, or why there is none.
fn resolve(token: usize, want: HandleKind, name: &'static str) -> Result<usize, HandleError> {
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    if let Some((index, generation)) = untoken(token) {
        if let Some(slot) = registry.slots.get(index) {
            if slot.generation == generation && slot.masked != 0 && slot.kind == want {
                return Ok(slot.masked ^ ADDRESS_MASK);
            }
        }
    }
    Err(invalid(&registry, token, want, name))
}

/// Unregisters the live handle of type `want` that `token` names; returns its address.
fn unregister(token: usize, want: HandleKind, name: &'static str) -> Result<usize, HandleError> {
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    if let Some((index, generation)) = untoken(token) {
        if let Some(slot) = registry.slots.get_mut(index) {
            if slot.generation == generation && slot.masked != 0 && slot.kind == want {
                let address = slot.masked ^ ADDRESS_MASK;
                slot.masked = 0;
                // Generation 0 is never live, so small integers are never handles.
                slot.generation = ((slot.generation + 1) & GENERATION_MASK).max(1);
                registry.free.push(index);
                return Ok(address);
            }
        }
    }
    Err(invalid(&registry, token, want, name))
}

/// Hands `value` to C as a new handle of type `C`.
pub(crate) fn into_handle<C: Castable>(value: C::Rust) -> *mut C {
    let address = Box::into_raw(Box::new(value)) as usize;
    register(C::KIND, address) as *mut C
}

/// The value behind `ptr`: `Ok(None)` for NULL, `Err` (naming `name` and the wanted type)
/// for anything but a live handle of type `C`.
///
/// The reference is valid until the handle is freed; the caller's contract is that no
/// other thread frees it during the call.
pub(crate) fn get<'a, C: Castable>(
    ptr: *const C,
    name: &'static str,
) -> Result<Option<&'a C::Rust>, HandleError> {
    if ptr.is_null() {
        return Ok(None);
    }
    let address = resolve(ptr as usize, C::KIND, name)?;
    // SAFETY: the registry holds `address` only while the value there is alive and of type
    // `C::Rust` (registered by `into_handle` or `lend`, unregistered before it is dropped).
    Ok(Some(unsafe { &*(address as *const C::Rust) }))
}

/// As [`get`], mutably: for handles only one thread uses at a time (a store sink).
pub(crate) fn get_mut<'a, C: Castable>(
    ptr: *mut C,
    name: &'static str,
) -> Result<Option<&'a mut C::Rust>, HandleError> {
    if ptr.is_null() {
        return Ok(None);
    }
    let address = resolve(ptr as usize, C::KIND, name)?;
    // SAFETY: as in `get`; the handle's contract gives this call exclusive use of it.
    Ok(Some(unsafe { &mut *(address as *mut C::Rust) }))
}

/// Takes back the value behind `ptr` for a `_free`: `Ok(None)` for NULL, `Err` for
/// anything but a live handle of type `C` (which is left alone).
pub(crate) fn take<C: Castable>(
    ptr: *mut C,
    name: &'static str,
) -> Result<Option<Box<C::Rust>>, HandleError> {
    if ptr.is_null() {
        return Ok(None);
    }
    let address = unregister(ptr as usize, C::KIND, name)?;
    // SAFETY: `address` came from `Box::into_raw` in `into_handle` (only owned handles are
    // freed by C) and was just unregistered, so no other call can take it again.
    Ok(Some(unsafe { Box::from_raw(address as *mut C::Rust) }))
}

/// A value lent to C for the length of a callback: registered while this lives.
pub(crate) struct Lent<'a, C: Castable> {
    token: usize,
    _value: PhantomData<&'a mut C::Rust>,
}

/// Lends `value` to C as a handle of type `C` until the returned guard drops.
pub(crate) fn lend<C: Castable>(value: &mut C::Rust) -> Lent<'_, C> {
    Lent {
        token: register(C::KIND, value as *mut C::Rust as usize),
        _value: PhantomData,
    }
}

impl<C: Castable> Lent<'_, C> {
    /// The handle to pass to C.
    pub(crate) fn as_ptr(&self) -> *mut C {
        self.token as *mut C
    }
}

impl<C: Castable> Drop for Lent<'_, C> {
    fn drop(&mut self) {
        let unregistered = unregister(self.token, C::KIND, "lent");
        debug_assert!(unregistered.is_ok(), "a lent handle stays registered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Thing;
    impl Castable for Thing {
        const KIND: HandleKind = HandleKind::Engine;
        type Rust = u64;
    }
    struct Other;
    impl Castable for Other {
        const KIND: HandleKind = HandleKind::Bytes;
        type Rust = String;
    }

    #[test]
    fn tokens_round_trip_and_are_never_zero() {
        for (index, generation) in [(0, 1), (5, GENERATION_MASK), (INDEX_MASK - 1, 7)] {
            let t = token(index, generation);
            assert_ne!(t, 0);
            assert_eq!(untoken(t), Some((index, generation)));
        }
        assert_eq!(untoken(0), None);
        assert_eq!(untoken(1 << INDEX_BITS), None);
    }

    #[test]
    fn a_handle_resolves_only_as_its_type_and_only_until_freed() {
        let a = into_handle::<Thing>(42);
        assert_eq!(get(a.cast_const(), "a"), Ok(Some(&42)));
        let b = into_handle::<Other>("x".to_owned());
        let wrong = get::<Thing>(b.cast::<Thing>(), "engine").unwrap_err();
        assert_eq!(
            wrong.to_string(),
            "parameter engine is a lnshard_bytes, not a lnshard_engine"
        );
        assert_eq!(
            wrong,
            HandleError::WrongType {
                param: "engine",
                want: HandleKind::Engine,
                given: HandleKind::Bytes
            }
        );
        // Freeing through the wrong type frees nothing.
        assert!(take::<Thing>(b.cast::<Thing>(), "engine").is_err());
        assert_eq!(
            get(b.cast_const(), "b").map(|s| s.cloned()),
            Ok(Some("x".to_owned()))
        );

        assert_eq!(take(a, "a").map(|b| b.map(|b| *b)), Ok(Some(42)));
        let freed = get(a.cast_const(), "engine").unwrap_err().to_string();
        assert!(freed.contains("not a live lnshard_engine"), "{freed}");
        // Whatever takes the freed slot next, the old token stays dead.
        let c = into_handle::<Thing>(7);
        assert_ne!(c, a);
        assert!(get(a.cast_const(), "engine").is_err());
        assert_eq!(get(c.cast_const(), "c"), Ok(Some(&7)));
        assert!(take(a, "a").is_err(), "a second free is refused");
        assert_eq!(get::<Thing>(std::ptr::null(), "a"), Ok(None));
        drop(take(b, "b"));
        drop(take(c, "c"));
    }

    #[test]
    fn a_lent_value_is_a_handle_only_while_lent() {
        let mut value = 5u64;
        let ptr = {
            let lent = lend::<Thing>(&mut value);
            let ptr = lent.as_ptr();
            *get_mut(ptr, "sink").expect("live").expect("not NULL") += 1;
            ptr
        };
        assert!(get_mut(ptr, "sink").is_err());
        assert_eq!(value, 6);
    }

    #[test]
    fn stray_pointers_are_refused_without_being_read() {
        let local = 0u64;
        let stray = (&local as *const u64).cast::<Thing>();
        let e = get(stray, "engine").unwrap_err().to_string();
        assert!(e.contains("never handed out by lnshard"), "{e}");
        assert!(get::<Thing>(usize::MAX as *const Thing, "engine").is_err());
    }
}
