//! What the job does, as a function of the seed: every key, every payment's kind, payer,
//! payee and amount.

use lightning_core::bitcoin::hashes::{sha256, Hash, HashEngine};
use lightning_core::node::PaymentId;
use lightning_core::secp256k1::SecretKey;
use lightning_core::types::PaymentPreimage;

/// Who pays whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Peer `from` pays peer `to` through the routing node.
    Forward {
        /// The payer.
        from: usize,
        /// The payee.
        to: usize,
    },
    /// Peer `from` pays the routing node.
    ToHub {
        /// The payer.
        from: usize,
    },
    /// The routing node pays peer `to`.
    FromHub {
        /// The payee.
        to: usize,
    },
}

/// One payment of the plan.
#[derive(Debug, Clone, Copy)]
pub struct Payment {
    /// Its number.
    pub n: u64,
    /// Who pays whom.
    pub kind: Kind,
    /// The amount the payee receives.
    pub amount_msat: u64,
    /// The preimage the payee claims with.
    pub preimage: PaymentPreimage,
    /// The payer's id for it.
    pub id: PaymentId,
}

/// The seeded plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The seed.
    pub seed: u64,
    /// Peers of the routing node.
    pub peers: usize,
    /// Payments to make.
    pub payments: u64,
}

impl Plan {
    /// A plan of `payments` payments among `peers` peers.
    pub fn new(seed: u64, peers: usize, payments: u64) -> Plan {
        Plan {
            seed,
            peers,
            payments,
        }
    }

    fn hash(&self, tag: &[u8], n: u64) -> [u8; 32] {
        let mut engine = sha256::Hash::engine();
        engine.input(b"lnshard-job");
        engine.input(&self.seed.to_le_bytes());
        engine.input(tag);
        engine.input(&n.to_le_bytes());
        sha256::Hash::from_engine(engine).to_byte_array()
    }

    /// A secret key for `tag`/`n` (node keys).
    pub fn secret(&self, tag: &[u8], n: u64) -> SecretKey {
        let mut counter = 0u64;
        loop {
            let mut bytes = self.hash(tag, n);
            bytes[..8]
                .iter_mut()
                .zip(counter.to_le_bytes())
                .for_each(|(b, c)| *b ^= c);
            if let Ok(key) = SecretKey::from_slice(&bytes) {
                return key;
            }
            counter += 1;
        }
    }

    /// 32 seeded bytes for `tag`/`n` (node seeds, ephemeral keys' material).
    pub fn bytes(&self, tag: &[u8], n: u64) -> [u8; 32] {
        self.hash(tag, n)
    }

    /// Payment `n`: 80% forwarded between two distinct peers, 10% from a peer to the routing
    /// node, 10% from the routing node to a peer; 1,000 to 50,000 sat (above the dust limit,
    /// so every HTLC is an output of the commitment transactions with its own signatures).
    pub fn payment(&self, n: u64) -> Payment {
        let h = self.hash(b"payment", n);
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&h[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        let peers = self.peers as u64;
        let from = (word(1) % peers) as usize;
        let mut to = (word(2) % (peers - 1)) as usize;
        if to >= from {
            to += 1;
        }
        let kind = match word(0) % 10 {
            0 => Kind::ToHub { from },
            1 => Kind::FromHub { to },
            _ => Kind::Forward { from, to },
        };
        let amount_msat = 1_000_000 + word(3) % 49_000_000;
        let preimage = PaymentPreimage(self.hash(b"preimage", n));
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&n.to_be_bytes());
        Payment {
            n,
            kind,
            amount_msat,
            preimage,
            id: PaymentId(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_seeded_and_never_self_payments() {
        let a = Plan::new(7, 5, 100);
        let b = Plan::new(7, 5, 100);
        for n in 0..1000 {
            let (x, y) = (a.payment(n), b.payment(n));
            assert_eq!(x.kind, y.kind);
            assert_eq!(x.amount_msat, y.amount_msat);
            if let Kind::Forward { from, to } = x.kind {
                assert_ne!(from, to);
                assert!(from < 5 && to < 5);
            }
            assert!((1_000_000..50_000_000).contains(&x.amount_msat));
        }
        assert_ne!(
            Plan::new(8, 5, 100).payment(0).preimage,
            a.payment(0).preimage
        );
    }
}
