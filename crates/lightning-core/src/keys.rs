//! BOLT 3 key derivation: per-commitment points, the per-commitment keys derived from a side's
//! basepoints, and the blinded revocation keys.
//!
//! BOLT 3 names keys from the point of view of the *owner* of a commitment transaction (the
//! side that can broadcast it), called "local"; the other side is "remote". The formulas are:
//!
//! ```text
//! pubkey  = basepoint + SHA256(per_commitment_point || basepoint) * G
//! privkey = basepoint_secret + SHA256(per_commitment_point || basepoint)
//! revocationpubkey  = revocation_basepoint * SHA256(revocation_basepoint || per_commitment_point)
//!                   + per_commitment_point * SHA256(per_commitment_point || revocation_basepoint)
//! revocationprivkey = revocation_basepoint_secret * SHA256(revocation_basepoint || per_commitment_point)
//!                   + per_commitment_secret * SHA256(per_commitment_point || revocation_basepoint)
//! ```
//!
//! Every function takes the secp256k1 context as an argument: the crate holds no global state.

use core::fmt;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{PublicKey, Scalar, Secp256k1, SecretKey, Signing, Verification};

use crate::secrets::{self, SecretError};

/// Why a key could not be derived.
///
/// Apart from malformed input (a per-commitment secret that is not a valid scalar), these can
/// only happen with negligible probability for honest inputs; they are errors rather than panics
/// because basepoints and per-commitment points come from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// A 32-byte secret was zero or not below the curve order.
    InvalidSecret {
        /// Which secret.
        field: &'static str,
    },
    /// A SHA256 tweak was not below the curve order.
    TweakOutOfRange {
        /// Which derivation.
        field: &'static str,
    },
    /// Adding or multiplying by the tweak gave the point at infinity or the zero scalar.
    DegenerateResult {
        /// Which derivation.
        field: &'static str,
    },
    /// The per-commitment secret could not be generated from the seed.
    Secret(SecretError),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::InvalidSecret { field } => {
                write!(
                    f,
                    "{field} is not a valid secret key: zero or not below the curve order"
                )
            }
            KeyError::TweakOutOfRange { field } => {
                write!(f, "{field} tweak is not below the curve order")
            }
            KeyError::DegenerateResult { field } => {
                write!(
                    f,
                    "{field} derivation gave the point at infinity or a zero key"
                )
            }
            KeyError::Secret(e) => write!(f, "per-commitment secret: {e}"),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Secret(e) => Some(e),
            _ => None,
        }
    }
}

impl From<SecretError> for KeyError {
    fn from(e: SecretError) -> Self {
        KeyError::Secret(e)
    }
}

/// SHA256(a || b) of two compressed points, as a scalar.
fn tweak(a: &PublicKey, b: &PublicKey, field: &'static str) -> Result<Scalar, KeyError> {
    let mut engine = sha256::Hash::engine();
    engine.input(&a.serialize());
    engine.input(&b.serialize());
    let hash = sha256::Hash::from_engine(engine).to_byte_array();
    Scalar::from_be_bytes(hash).map_err(|_| KeyError::TweakOutOfRange { field })
}

/// Parses a 32-byte secret as a secret key.
pub fn secret_key_from_bytes(bytes: &[u8; 32], field: &'static str) -> Result<SecretKey, KeyError> {
    SecretKey::from_slice(bytes).map_err(|_| KeyError::InvalidSecret { field })
}

/// `per_commitment_point = per_commitment_secret * G`.
///
/// Fails if the secret is zero or not below the curve order (a peer can send such bytes in
/// `revoke_and_ack`).
pub fn per_commitment_point<C: Signing>(
    secp: &Secp256k1<C>,
    per_commitment_secret: &[u8; 32],
) -> Result<PublicKey, KeyError> {
    let secret = secret_key_from_bytes(per_commitment_secret, "per_commitment_secret")?;
    Ok(PublicKey::from_secret_key(secp, &secret))
}

/// `basepoint + SHA256(per_commitment_point || basepoint) * G`: `localpubkey`,
/// `local_htlcpubkey`, `remote_htlcpubkey`, `local_delayedpubkey` and `remote_delayedpubkey`.
pub fn derive_public_key<C: Verification>(
    secp: &Secp256k1<C>,
    per_commitment_point: &PublicKey,
    basepoint: &PublicKey,
) -> Result<PublicKey, KeyError> {
    let t = tweak(per_commitment_point, basepoint, "derived pubkey")?;
    basepoint
        .add_exp_tweak(secp, &t)
        .map_err(|_| KeyError::DegenerateResult {
            field: "derived pubkey",
        })
}

/// `basepoint_secret + SHA256(per_commitment_point || basepoint)`: the private key matching
/// [`derive_public_key`].
pub fn derive_private_key<C: Signing>(
    secp: &Secp256k1<C>,
    per_commitment_point: &PublicKey,
    basepoint_secret: &SecretKey,
) -> Result<SecretKey, KeyError> {
    let basepoint = PublicKey::from_secret_key(secp, basepoint_secret);
    derive_private_key_from(per_commitment_point, basepoint_secret, &basepoint)
}

/// [`derive_private_key`] by a caller that already holds `basepoint`, the public key of
/// `basepoint_secret` (a channel's own basepoints are): the same key without the fixed-base
/// multiplication that recomputes the basepoint, which was most of its cost.
pub fn derive_private_key_from(
    per_commitment_point: &PublicKey,
    basepoint_secret: &SecretKey,
    basepoint: &PublicKey,
) -> Result<SecretKey, KeyError> {
    debug_assert_eq!(
        PublicKey::from_secret_key(&crate::secp::ctx(), basepoint_secret),
        *basepoint,
        "the basepoint of the secret"
    );
    let t = tweak(per_commitment_point, basepoint, "derived privkey")?;
    basepoint_secret
        .add_tweak(&t)
        .map_err(|_| KeyError::DegenerateResult {
            field: "derived privkey",
        })
}

/// `revocationpubkey`: the revocation basepoint of one side blinded with the per-commitment
/// point of the other.
pub fn derive_revocation_public_key<C: Verification>(
    secp: &Secp256k1<C>,
    revocation_basepoint: &PublicKey,
    per_commitment_point: &PublicKey,
) -> Result<PublicKey, KeyError> {
    let field = "revocationpubkey";
    let base_tweak = tweak(revocation_basepoint, per_commitment_point, field)?;
    let point_tweak = tweak(per_commitment_point, revocation_basepoint, field)?;
    let base_part = revocation_basepoint
        .mul_tweak(secp, &base_tweak)
        .map_err(|_| KeyError::DegenerateResult { field })?;
    let point_part = per_commitment_point
        .mul_tweak(secp, &point_tweak)
        .map_err(|_| KeyError::DegenerateResult { field })?;
    base_part
        .combine(&point_part)
        .map_err(|_| KeyError::DegenerateResult { field })
}

/// The secret behind one of the two points of a `revocationpubkey`, which the deriving side
/// always holds: its own revocation basepoint's (for the other side's commitments) or its own
/// per-commitment point's (for its own commitments).
#[derive(Clone, Copy)]
pub enum RevocationSecret<'a> {
    /// The secret of the revocation basepoint.
    Basepoint(&'a SecretKey),
    /// The secret of the per-commitment point.
    PerCommitment(&'a SecretKey),
}

impl fmt::Debug for RevocationSecret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevocationSecret::Basepoint(_) => "RevocationSecret::Basepoint(..)",
            RevocationSecret::PerCommitment(_) => "RevocationSecret::PerCommitment(..)",
        })
    }
}

/// [`derive_revocation_public_key`] by a side that holds the secret of one of the two points
/// (`known`, which must be that point's): the same key, with that point's term computed as
/// `(secret * tweak) * G`, a constant-time fixed-base multiplication, instead of a
/// variable-base one. A commitment's keys are derived for every commitment signed and
/// verified, and this multiplication was the largest single cost of a payment.
pub fn derive_revocation_public_key_knowing<C: Signing + Verification>(
    secp: &Secp256k1<C>,
    revocation_basepoint: &PublicKey,
    per_commitment_point: &PublicKey,
    known: RevocationSecret<'_>,
) -> Result<PublicKey, KeyError> {
    let field = "revocationpubkey";
    let base_tweak = tweak(revocation_basepoint, per_commitment_point, field)?;
    let point_tweak = tweak(per_commitment_point, revocation_basepoint, field)?;
    let degenerate = |_| KeyError::DegenerateResult { field };
    let (base_part, point_part) = match known {
        RevocationSecret::Basepoint(secret) => {
            debug_assert_eq!(
                PublicKey::from_secret_key(secp, secret),
                *revocation_basepoint
            );
            let scalar = secret.mul_tweak(&base_tweak).map_err(degenerate)?;
            (
                PublicKey::from_secret_key(secp, &scalar),
                per_commitment_point
                    .mul_tweak(secp, &point_tweak)
                    .map_err(degenerate)?,
            )
        }
        RevocationSecret::PerCommitment(secret) => {
            debug_assert_eq!(
                PublicKey::from_secret_key(secp, secret),
                *per_commitment_point
            );
            let scalar = secret.mul_tweak(&point_tweak).map_err(degenerate)?;
            (
                revocation_basepoint
                    .mul_tweak(secp, &base_tweak)
                    .map_err(degenerate)?,
                PublicKey::from_secret_key(secp, &scalar),
            )
        }
    };
    base_part.combine(&point_part).map_err(degenerate)
}

/// `revocationprivkey`: computable once the per-commitment secret has been revealed.
pub fn derive_revocation_private_key<C: Signing>(
    secp: &Secp256k1<C>,
    revocation_basepoint_secret: &SecretKey,
    per_commitment_secret: &[u8; 32],
) -> Result<SecretKey, KeyError> {
    let field = "revocationprivkey";
    let commitment_secret = secret_key_from_bytes(per_commitment_secret, "per_commitment_secret")?;
    let revocation_basepoint = PublicKey::from_secret_key(secp, revocation_basepoint_secret);
    let per_commitment_point = PublicKey::from_secret_key(secp, &commitment_secret);
    let base_tweak = tweak(&revocation_basepoint, &per_commitment_point, field)?;
    let point_tweak = tweak(&per_commitment_point, &revocation_basepoint, field)?;
    let base_part = revocation_basepoint_secret
        .mul_tweak(&base_tweak)
        .map_err(|_| KeyError::DegenerateResult { field })?;
    let point_part = commitment_secret
        .mul_tweak(&point_tweak)
        .map_err(|_| KeyError::DegenerateResult { field })?;
    base_part
        .add_tweak(&Scalar::from(point_part))
        .map_err(|_| KeyError::DegenerateResult { field })
}

/// One side's public channel keys, as sent in `open_channel` / `accept_channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelPublicKeys {
    /// `funding_pubkey`: this side's key in the 2-of-2 funding output.
    pub funding_pubkey: PublicKey,
    /// `revocation_basepoint`.
    pub revocation_basepoint: PublicKey,
    /// `payment_basepoint` (with `option_static_remotekey`, the other side's `to_remote` key).
    pub payment_basepoint: PublicKey,
    /// `delayed_payment_basepoint`.
    pub delayed_payment_basepoint: PublicKey,
    /// `htlc_basepoint`.
    pub htlc_basepoint: PublicKey,
}

/// One side's channel secrets: the basepoint secrets and the per-commitment seed.
///
/// `Debug` does not print the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelKeys {
    /// Secret of `funding_pubkey`.
    pub funding_key: SecretKey,
    /// Secret of `revocation_basepoint`.
    pub revocation_base_key: SecretKey,
    /// Secret of `payment_basepoint`.
    pub payment_base_key: SecretKey,
    /// Secret of `delayed_payment_basepoint`.
    pub delayed_payment_base_key: SecretKey,
    /// Secret of `htlc_basepoint`.
    pub htlc_base_key: SecretKey,
    /// Seed of this side's per-commitment secrets (BOLT 3 `generate_from_seed`).
    pub commitment_seed: [u8; 32],
}

impl fmt::Debug for ChannelKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelKeys { .. }")
    }
}

impl ChannelKeys {
    /// The public basepoints and funding key matching these secrets.
    pub fn public_keys<C: Signing>(&self, secp: &Secp256k1<C>) -> ChannelPublicKeys {
        ChannelPublicKeys {
            funding_pubkey: PublicKey::from_secret_key(secp, &self.funding_key),
            revocation_basepoint: PublicKey::from_secret_key(secp, &self.revocation_base_key),
            payment_basepoint: PublicKey::from_secret_key(secp, &self.payment_base_key),
            delayed_payment_basepoint: PublicKey::from_secret_key(
                secp,
                &self.delayed_payment_base_key,
            ),
            htlc_basepoint: PublicKey::from_secret_key(secp, &self.htlc_base_key),
        }
    }

    /// The per-commitment secret with shachain index `index` (the first commitment uses
    /// [`secrets::FIRST_INDEX`], then the index counts down).
    pub fn per_commitment_secret(&self, index: u64) -> Result<[u8; 32], KeyError> {
        Ok(secrets::generate_from_seed(&self.commitment_seed, index)?)
    }

    /// The per-commitment point with shachain index `index`.
    pub fn per_commitment_point<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        index: u64,
    ) -> Result<PublicKey, KeyError> {
        per_commitment_point(secp, &self.per_commitment_secret(index)?)
    }

    /// This side's HTLC private key for a commitment with the given per-commitment point.
    pub fn htlc_key<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        per_commitment_point: &PublicKey,
    ) -> Result<SecretKey, KeyError> {
        derive_private_key(secp, per_commitment_point, &self.htlc_base_key)
    }

    /// This side's delayed-payment private key for a commitment with the given point.
    pub fn delayed_payment_key<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        per_commitment_point: &PublicKey,
    ) -> Result<SecretKey, KeyError> {
        derive_private_key(secp, per_commitment_point, &self.delayed_payment_base_key)
    }

    /// The revocation private key of the other side's commitment, once the other side has
    /// revealed its per-commitment secret.
    pub fn revocation_key<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        per_commitment_secret: &[u8; 32],
    ) -> Result<SecretKey, KeyError> {
        derive_revocation_private_key(secp, &self.revocation_base_key, per_commitment_secret)
    }
}

/// The public keys of one commitment transaction, named from its owner's ("local") point of
/// view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitmentKeys {
    /// The owner's per-commitment point for this commitment.
    pub per_commitment_point: PublicKey,
    /// `revocationpubkey`: the remote side's revocation basepoint blinded with the point.
    pub revocation_key: PublicKey,
    /// `local_delayedpubkey`: pays the owner's `to_local` and second-stage HTLC outputs.
    pub local_delayed_key: PublicKey,
    /// `local_htlcpubkey` and `remote_htlcpubkey`; `None` when derived with
    /// [`CommitmentKeys::derive_without_htlc_keys`], for a commitment without untrimmed HTLCs
    /// (where no script uses them).
    pub htlc_keys: Option<HtlcKeys>,
    /// `remotepubkey`: the remote side's `payment_basepoint` (static remote key).
    pub remote_payment_key: PublicKey,
}

/// The two HTLC keys of one commitment, named from its owner's ("local") point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtlcKeys {
    /// `local_htlcpubkey`.
    pub local_htlc_key: PublicKey,
    /// `remote_htlcpubkey`.
    pub remote_htlc_key: PublicKey,
}

impl CommitmentKeys {
    /// Derives the keys of the commitment owned by `local`, at `per_commitment_point` (the
    /// owner's point for this commitment number).
    pub fn derive<C: Verification>(
        secp: &Secp256k1<C>,
        per_commitment_point: &PublicKey,
        local: &ChannelPublicKeys,
        remote: &ChannelPublicKeys,
    ) -> Result<CommitmentKeys, KeyError> {
        Self::derive_public(secp, per_commitment_point, local, remote, true)
    }

    /// [`CommitmentKeys::derive`] (with `htlc_keys`) or
    /// [`CommitmentKeys::derive_without_htlc_keys`] (without) by a side that holds the secret
    /// of one of the revocation key's points: the same keys, one variable-base multiplication
    /// cheaper ([`derive_revocation_public_key_knowing`]).
    pub fn derive_knowing<C: Signing + Verification>(
        secp: &Secp256k1<C>,
        per_commitment_point: &PublicKey,
        local: &ChannelPublicKeys,
        remote: &ChannelPublicKeys,
        known: RevocationSecret<'_>,
        htlc_keys: bool,
    ) -> Result<CommitmentKeys, KeyError> {
        let revocation_key = derive_revocation_public_key_knowing(
            secp,
            &remote.revocation_basepoint,
            per_commitment_point,
            known,
        )?;
        Self::assemble(
            secp,
            per_commitment_point,
            local,
            remote,
            revocation_key,
            htlc_keys,
        )
    }

    /// The keys around an already derived `revocation_key`.
    fn assemble<C: Verification>(
        secp: &Secp256k1<C>,
        per_commitment_point: &PublicKey,
        local: &ChannelPublicKeys,
        remote: &ChannelPublicKeys,
        revocation_key: PublicKey,
        htlc_keys: bool,
    ) -> Result<CommitmentKeys, KeyError> {
        let htlc_keys = if htlc_keys {
            Some(HtlcKeys {
                local_htlc_key: derive_public_key(
                    secp,
                    per_commitment_point,
                    &local.htlc_basepoint,
                )?,
                remote_htlc_key: derive_public_key(
                    secp,
                    per_commitment_point,
                    &remote.htlc_basepoint,
                )?,
            })
        } else {
            None
        };
        Ok(CommitmentKeys {
            per_commitment_point: *per_commitment_point,
            revocation_key,
            local_delayed_key: derive_public_key(
                secp,
                per_commitment_point,
                &local.delayed_payment_basepoint,
            )?,
            htlc_keys,
            remote_payment_key: remote.payment_basepoint,
        })
    }

    /// These keys with both HTLC keys, derived now if they were left out (two point
    /// tweaks); `owner` and `other` are the basepoints these keys were derived with.
    pub fn with_htlc_keys<C: Verification>(
        self,
        secp: &Secp256k1<C>,
        owner: &ChannelPublicKeys,
        other: &ChannelPublicKeys,
    ) -> Result<CommitmentKeys, KeyError> {
        if self.htlc_keys.is_some() {
            return Ok(self);
        }
        let point = &self.per_commitment_point;
        Ok(CommitmentKeys {
            htlc_keys: Some(HtlcKeys {
                local_htlc_key: derive_public_key(secp, point, &owner.htlc_basepoint)?,
                remote_htlc_key: derive_public_key(secp, point, &other.htlc_basepoint)?,
            }),
            ..self
        })
    }

    /// As [`CommitmentKeys::derive`] without the two HTLC keys (`htlc_keys` is `None`): what
    /// a commitment whose HTLCs are all trimmed needs, two point tweaks cheaper. Building a
    /// commitment with an untrimmed HTLC from these keys fails.
    pub fn derive_without_htlc_keys<C: Verification>(
        secp: &Secp256k1<C>,
        per_commitment_point: &PublicKey,
        local: &ChannelPublicKeys,
        remote: &ChannelPublicKeys,
    ) -> Result<CommitmentKeys, KeyError> {
        Self::derive_public(secp, per_commitment_point, local, remote, false)
    }

    /// The keys from public points only (no secret known).
    fn derive_public<C: Verification>(
        secp: &Secp256k1<C>,
        per_commitment_point: &PublicKey,
        local: &ChannelPublicKeys,
        remote: &ChannelPublicKeys,
        htlc_keys: bool,
    ) -> Result<CommitmentKeys, KeyError> {
        let revocation_key =
            derive_revocation_public_key(secp, &remote.revocation_basepoint, per_commitment_point)?;
        Self::assemble(
            secp,
            per_commitment_point,
            local,
            remote,
            revocation_key,
            htlc_keys,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sk(byte: u8) -> SecretKey {
        SecretKey::from_slice(&[byte; 32]).expect("a repeated small byte is a valid key")
    }

    #[test]
    fn derived_private_key_matches_derived_public_key() {
        let secp = crate::secp::ctx();
        let base = sk(0x11);
        let point = PublicKey::from_secret_key(&secp, &sk(0x22));
        let private = derive_private_key(&secp, &point, &base).expect("valid");
        let public = derive_public_key(&secp, &point, &PublicKey::from_secret_key(&secp, &base))
            .expect("valid");
        assert_eq!(PublicKey::from_secret_key(&secp, &private), public);
    }

    #[test]
    fn revocation_private_key_matches_revocation_public_key() {
        let secp = crate::secp::ctx();
        let base = sk(0x33);
        let commitment_secret = [0x44; 32];
        let point = per_commitment_point(&secp, &commitment_secret).expect("valid");
        let private =
            derive_revocation_private_key(&secp, &base, &commitment_secret).expect("valid");
        let public =
            derive_revocation_public_key(&secp, &PublicKey::from_secret_key(&secp, &base), &point)
                .expect("valid");
        assert_eq!(PublicKey::from_secret_key(&secp, &private), public);
    }

    #[test]
    fn revocation_public_key_knowing_either_secret_matches() {
        let secp = crate::secp::ctx();
        for (base_byte, point_byte) in [(0x33u8, 0x44u8), (0x01, 0x7f), (0xee, 0x02)] {
            let base = sk(base_byte);
            let commitment_secret = [point_byte; 32];
            let point_secret = secret_key_from_bytes(&commitment_secret, "test").expect("valid");
            let basepoint = PublicKey::from_secret_key(&secp, &base);
            let point = per_commitment_point(&secp, &commitment_secret).expect("valid");
            let plain = derive_revocation_public_key(&secp, &basepoint, &point).expect("valid");
            for known in [
                RevocationSecret::Basepoint(&base),
                RevocationSecret::PerCommitment(&point_secret),
            ] {
                let fast = derive_revocation_public_key_knowing(&secp, &basepoint, &point, known)
                    .expect("valid");
                assert_eq!(fast, plain, "{known:?}");
            }
        }
    }

    #[test]
    fn zero_per_commitment_secret_is_rejected() {
        let secp = crate::secp::ctx();
        assert_eq!(
            per_commitment_point(&secp, &[0; 32]),
            Err(KeyError::InvalidSecret {
                field: "per_commitment_secret"
            })
        );
        assert_eq!(
            derive_revocation_private_key(&secp, &sk(1), &[0xff; 32]),
            Err(KeyError::InvalidSecret {
                field: "per_commitment_secret"
            })
        );
    }

    #[test]
    fn channel_keys_debug_hides_secrets() {
        let keys = ChannelKeys {
            funding_key: sk(1),
            revocation_base_key: sk(2),
            payment_base_key: sk(3),
            delayed_payment_base_key: sk(4),
            htlc_base_key: sk(5),
            commitment_seed: [6; 32],
        };
        assert_eq!(format!("{keys:?}"), "ChannelKeys { .. }");
    }

    #[test]
    fn commitment_keys_use_remote_payment_basepoint_as_remotepubkey() {
        let secp = crate::secp::ctx();
        let local = ChannelKeys {
            funding_key: sk(1),
            revocation_base_key: sk(2),
            payment_base_key: sk(3),
            delayed_payment_base_key: sk(4),
            htlc_base_key: sk(5),
            commitment_seed: [6; 32],
        };
        let remote = ChannelKeys {
            funding_key: sk(7),
            revocation_base_key: sk(8),
            payment_base_key: sk(9),
            delayed_payment_base_key: sk(10),
            htlc_base_key: sk(11),
            commitment_seed: [12; 32],
        };
        let (lp, rp) = (local.public_keys(&secp), remote.public_keys(&secp));
        let point = local
            .per_commitment_point(&secp, secrets::FIRST_INDEX)
            .expect("valid");
        let keys = CommitmentKeys::derive(&secp, &point, &lp, &rp).expect("valid");
        assert_eq!(keys.remote_payment_key, rp.payment_basepoint);
        let htlc = local.htlc_key(&secp, &point).expect("valid");
        assert_eq!(
            Some(PublicKey::from_secret_key(&secp, &htlc)),
            keys.htlc_keys.map(|h| h.local_htlc_key)
        );
        let remote_htlc = remote.htlc_key(&secp, &point).expect("valid");
        assert_eq!(
            Some(PublicKey::from_secret_key(&secp, &remote_htlc)),
            keys.htlc_keys.map(|h| h.remote_htlc_key)
        );
        let light =
            CommitmentKeys::derive_without_htlc_keys(&secp, &point, &lp, &rp).expect("valid");
        assert_eq!(
            light,
            CommitmentKeys {
                htlc_keys: None,
                ..keys
            }
        );
        let delayed = local.delayed_payment_key(&secp, &point).expect("valid");
        assert_eq!(
            PublicKey::from_secret_key(&secp, &delayed),
            keys.local_delayed_key
        );
        let secret = local
            .per_commitment_secret(secrets::FIRST_INDEX)
            .expect("valid");
        let revocation = remote.revocation_key(&secp, &secret).expect("valid");
        assert_eq!(
            PublicKey::from_secret_key(&secp, &revocation),
            keys.revocation_key
        );
    }
}
