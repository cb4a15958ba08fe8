//! BOLT 7 `address descriptor`s, as carried in `init`'s `remote_addr`.

use core::fmt;

use crate::ser::{DecodeError, Reader};

/// A DNS hostname of at most 255 ASCII bytes (BOLT 7 address type 5).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Hostname(String);

impl Hostname {
    /// The longest hostname a descriptor can carry (its length is one byte).
    pub const MAX_LEN: usize = 255;

    /// Checks that `name` is ASCII and at most [`Hostname::MAX_LEN`] bytes.
    pub fn new(name: impl Into<String>) -> Result<Hostname, DecodeError> {
        let name = name.into();
        if !name.is_ascii() {
            return Err(DecodeError::InvalidValue {
                field: "address hostname",
                reason: "hostname bytes must be ascii",
            });
        }
        if name.len() > Self::MAX_LEN {
            return Err(DecodeError::InvalidValue {
                field: "address hostname",
                reason: "hostname is longer than 255 bytes",
            });
        }
        Ok(Hostname(name))
    }

    /// The hostname.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A BOLT 7 `address descriptor`: one type byte and the data for that type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SocketAddress {
    /// Type 1: an IPv4 address and port.
    Ipv4 {
        /// The address octets.
        addr: [u8; 4],
        /// The TCP port.
        port: u16,
    },
    /// Type 2: an IPv6 address and port.
    Ipv6 {
        /// The address octets.
        addr: [u8; 16],
        /// The TCP port.
        port: u16,
    },
    /// Type 3: a deprecated Tor v2 onion service (12 opaque bytes).
    OnionV2([u8; 12]),
    /// Type 4: a Tor v3 onion service.
    OnionV3 {
        /// The service's ed25519 public key.
        ed25519_pubkey: [u8; 32],
        /// The address checksum.
        checksum: u16,
        /// The onion version byte.
        version: u8,
        /// The TCP port.
        port: u16,
    },
    /// Type 5: a DNS hostname and port.
    Hostname {
        /// The hostname.
        hostname: Hostname,
        /// The TCP port.
        port: u16,
    },
    /// A descriptor type this crate does not know (BOLT 7 readers ignore these), with the
    /// rest of its value.
    ///
    /// Only meaningful where the descriptor's length is known from outside, as in the
    /// `remote_addr` TLV record. Encoding a known type (1 to 5) here is a caller bug.
    Unknown {
        /// The type byte.
        address_type: u8,
        /// The bytes after the type byte.
        data: Vec<u8>,
    },
}

impl SocketAddress {
    /// The descriptor's type byte.
    pub fn address_type(&self) -> u8 {
        match self {
            SocketAddress::Ipv4 { .. } => 1,
            SocketAddress::Ipv6 { .. } => 2,
            SocketAddress::OnionV2(_) => 3,
            SocketAddress::OnionV3 { .. } => 4,
            SocketAddress::Hostname { .. } => 5,
            SocketAddress::Unknown { address_type, .. } => *address_type,
        }
    }

    /// Appends the descriptor (type byte, then data).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.address_type());
        match self {
            SocketAddress::Ipv4 { addr, port } => {
                out.extend_from_slice(addr);
                out.extend_from_slice(&port.to_be_bytes());
            }
            SocketAddress::Ipv6 { addr, port } => {
                out.extend_from_slice(addr);
                out.extend_from_slice(&port.to_be_bytes());
            }
            SocketAddress::OnionV2(bytes) => out.extend_from_slice(bytes),
            SocketAddress::OnionV3 {
                ed25519_pubkey,
                checksum,
                version,
                port,
            } => {
                out.extend_from_slice(ed25519_pubkey);
                out.extend_from_slice(&checksum.to_be_bytes());
                out.push(*version);
                out.extend_from_slice(&port.to_be_bytes());
            }
            SocketAddress::Hostname { hostname, port } => {
                // Hostname::new caps the length at 255 bytes, so it fits the length byte.
                out.push(hostname.0.len() as u8);
                out.extend_from_slice(hostname.0.as_bytes());
                out.extend_from_slice(&port.to_be_bytes());
            }
            SocketAddress::Unknown { data, .. } => out.extend_from_slice(data),
        }
    }

    /// Decodes one descriptor that must fill `bytes` exactly (as in a TLV value).
    pub fn decode_exact(bytes: &[u8], field: &'static str) -> Result<SocketAddress, DecodeError> {
        let mut reader = Reader::new(bytes);
        let address_type = reader.read_u8(field)?;
        let address = match address_type {
            1 => SocketAddress::Ipv4 {
                addr: reader.read_array(field)?,
                port: reader.read_u16(field)?,
            },
            2 => SocketAddress::Ipv6 {
                addr: reader.read_array(field)?,
                port: reader.read_u16(field)?,
            },
            3 => SocketAddress::OnionV2(reader.read_array(field)?),
            4 => SocketAddress::OnionV3 {
                ed25519_pubkey: reader.read_array(field)?,
                checksum: reader.read_u16(field)?,
                version: reader.read_u8(field)?,
                port: reader.read_u16(field)?,
            },
            5 => {
                let len = reader.read_u8(field)?;
                let name = reader.read_bytes(u64::from(len), field)?;
                let name = core::str::from_utf8(name).map_err(|_| DecodeError::InvalidValue {
                    field,
                    reason: "hostname bytes must be ascii",
                })?;
                let hostname = Hostname::new(name).map_err(|_| DecodeError::InvalidValue {
                    field,
                    reason: "hostname bytes must be ascii",
                })?;
                SocketAddress::Hostname {
                    hostname,
                    port: reader.read_u16(field)?,
                }
            }
            _ => SocketAddress::Unknown {
                address_type,
                data: reader.rest().to_vec(),
            },
        };
        reader.finish(field)?;
        Ok(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_layout() {
        let a = SocketAddress::Ipv4 {
            addr: [127, 0, 0, 1],
            port: 9735,
        };
        let mut out = Vec::new();
        a.write(&mut out);
        assert_eq!(out, vec![1, 127, 0, 0, 1, 0x26, 0x07]);
        assert_eq!(SocketAddress::decode_exact(&out, "a"), Ok(a));
    }

    #[test]
    fn hostname_round_trips_and_rejects_non_ascii() {
        let a = SocketAddress::Hostname {
            hostname: Hostname::new("example.com").unwrap(),
            port: 9735,
        };
        let mut out = Vec::new();
        a.write(&mut out);
        assert_eq!(out.get(..2), Some(&[5u8, 11][..]));
        assert_eq!(SocketAddress::decode_exact(&out, "a"), Ok(a));

        let bad = [5u8, 2, 0xc3, 0xa9, 0x26, 0x07];
        assert_eq!(
            SocketAddress::decode_exact(&bad, "a"),
            Err(DecodeError::InvalidValue {
                field: "a",
                reason: "hostname bytes must be ascii"
            })
        );
        assert!(Hostname::new("x".repeat(256)).is_err());
    }

    #[test]
    fn wrong_lengths_are_errors() {
        // ipv4 with one byte too many, ipv6 short.
        assert!(matches!(
            SocketAddress::decode_exact(&[1, 1, 2, 3, 4, 0, 1, 9], "a"),
            Err(DecodeError::TrailingBytes { extra: 1, .. })
        ));
        assert!(matches!(
            SocketAddress::decode_exact(&[2, 1, 2, 3], "a"),
            Err(DecodeError::ShortRead { .. })
        ));
        assert!(matches!(
            SocketAddress::decode_exact(&[], "a"),
            Err(DecodeError::ShortRead { .. })
        ));
    }

    #[test]
    fn unknown_types_are_kept() {
        let bytes = [9u8, 1, 2, 3];
        let a = SocketAddress::decode_exact(&bytes, "a").unwrap();
        assert_eq!(
            a,
            SocketAddress::Unknown {
                address_type: 9,
                data: vec![1, 2, 3]
            }
        );
        let mut out = Vec::new();
        a.write(&mut out);
        assert_eq!(out, bytes);
    }
}
