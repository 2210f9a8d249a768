//! What an answer to a probe says, as one flat enum: the `kind` of a trace report's responder.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::answer::AnswerKind;
use super::icmp::{IcmpKind, Unreachable};

/// The class of an answer ("time exceeded", "port unreachable", "tcp syn-ack", ...). In JSON it
/// is the string [`ReplyKind::as_str`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ReplyKind {
    /// ICMP echo reply.
    #[serde(rename = "echo reply")]
    EchoReply,
    /// Time exceeded in transit (TTL / hop limit).
    #[serde(rename = "time exceeded")]
    TimeExceeded,
    /// Time exceeded during fragment reassembly.
    #[serde(rename = "reassembly time exceeded")]
    ReassemblyTimeExceeded,
    /// Destination network unreachable (`!N`).
    #[serde(rename = "net unreachable")]
    NetUnreachable,
    /// Destination host unreachable (`!H`).
    #[serde(rename = "host unreachable")]
    HostUnreachable,
    /// Protocol unreachable (`!P`).
    #[serde(rename = "protocol unreachable")]
    ProtocolUnreachable,
    /// Port unreachable: a UDP probe reached the target.
    #[serde(rename = "port unreachable")]
    PortUnreachable,
    /// Fragmentation needed and DF set (`!F`).
    #[serde(rename = "fragmentation needed")]
    FragmentationNeeded,
    /// Source route failed (`!S`).
    #[serde(rename = "source route failed")]
    SourceRouteFailed,
    /// Administratively prohibited (`!X`).
    #[serde(rename = "admin prohibited")]
    AdminProhibited,
    /// `ICMPv6` beyond scope of source address (`!U`).
    #[serde(rename = "beyond scope")]
    BeyondScope,
    /// Another destination unreachable code (`!U`).
    #[serde(rename = "unreachable")]
    Unreachable,
    /// `ICMPv6` packet too big (`!F`).
    #[serde(rename = "packet too big")]
    PacketTooBig,
    /// Parameter problem.
    #[serde(rename = "parameter problem")]
    ParameterProblem,
    /// ICMP echo request.
    #[serde(rename = "echo request")]
    EchoRequest,
    /// Any other ICMP message.
    #[serde(rename = "other icmp")]
    OtherIcmp,
    /// TCP reset from the target (port closed).
    #[serde(rename = "tcp rst")]
    TcpRst,
    /// TCP SYN-ACK from the target (port open).
    #[serde(rename = "tcp syn-ack")]
    TcpSynAck,
    /// A STAMP reflector's reply to a UDP probe (port open).
    #[serde(rename = "stamp reply")]
    StampReply,
}

impl ReplyKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [ReplyKind] = &[
        ReplyKind::EchoReply,
        ReplyKind::TimeExceeded,
        ReplyKind::ReassemblyTimeExceeded,
        ReplyKind::NetUnreachable,
        ReplyKind::HostUnreachable,
        ReplyKind::ProtocolUnreachable,
        ReplyKind::PortUnreachable,
        ReplyKind::FragmentationNeeded,
        ReplyKind::SourceRouteFailed,
        ReplyKind::AdminProhibited,
        ReplyKind::BeyondScope,
        ReplyKind::Unreachable,
        ReplyKind::PacketTooBig,
        ReplyKind::ParameterProblem,
        ReplyKind::EchoRequest,
        ReplyKind::OtherIcmp,
        ReplyKind::TcpRst,
        ReplyKind::TcpSynAck,
        ReplyKind::StampReply,
    ];

    /// The name in reports: "time exceeded", "port unreachable", "tcp syn-ack", ...
    pub const fn as_str(self) -> &'static str {
        match self {
            ReplyKind::EchoReply => "echo reply",
            ReplyKind::TimeExceeded => "time exceeded",
            ReplyKind::ReassemblyTimeExceeded => "reassembly time exceeded",
            ReplyKind::NetUnreachable => "net unreachable",
            ReplyKind::HostUnreachable => "host unreachable",
            ReplyKind::ProtocolUnreachable => "protocol unreachable",
            ReplyKind::PortUnreachable => "port unreachable",
            ReplyKind::FragmentationNeeded => "fragmentation needed",
            ReplyKind::SourceRouteFailed => "source route failed",
            ReplyKind::AdminProhibited => "admin prohibited",
            ReplyKind::BeyondScope => "beyond scope",
            ReplyKind::Unreachable => "unreachable",
            ReplyKind::PacketTooBig => "packet too big",
            ReplyKind::ParameterProblem => "parameter problem",
            ReplyKind::EchoRequest => "echo request",
            ReplyKind::OtherIcmp => "other icmp",
            ReplyKind::TcpRst => "tcp rst",
            ReplyKind::TcpSynAck => "tcp syn-ack",
            ReplyKind::StampReply => "stamp reply",
        }
    }

    /// The traceroute annotation of the kind (`!H`, `!N`, `!X`, `!P`, `!F`, `!S`, `!U`), if any.
    pub const fn annotation(self) -> Option<&'static str> {
        match self {
            ReplyKind::HostUnreachable => Some("!H"),
            ReplyKind::NetUnreachable => Some("!N"),
            ReplyKind::AdminProhibited => Some("!X"),
            ReplyKind::ProtocolUnreachable => Some("!P"),
            ReplyKind::FragmentationNeeded | ReplyKind::PacketTooBig => Some("!F"),
            ReplyKind::SourceRouteFailed => Some("!S"),
            ReplyKind::BeyondScope | ReplyKind::Unreachable => Some("!U"),
            _ => None,
        }
    }
}

impl From<IcmpKind> for ReplyKind {
    fn from(k: IcmpKind) -> Self {
        match k {
            IcmpKind::EchoReply { .. } => ReplyKind::EchoReply,
            IcmpKind::TimeExceeded { code: 1 } => ReplyKind::ReassemblyTimeExceeded,
            IcmpKind::TimeExceeded { .. } => ReplyKind::TimeExceeded,
            IcmpKind::Unreachable(u) => match u {
                Unreachable::Net => ReplyKind::NetUnreachable,
                Unreachable::Host => ReplyKind::HostUnreachable,
                Unreachable::Protocol => ReplyKind::ProtocolUnreachable,
                Unreachable::Port => ReplyKind::PortUnreachable,
                Unreachable::FragNeeded { .. } => ReplyKind::FragmentationNeeded,
                Unreachable::SourceRoute => ReplyKind::SourceRouteFailed,
                Unreachable::AdminProhibited => ReplyKind::AdminProhibited,
                Unreachable::BeyondScope => ReplyKind::BeyondScope,
                Unreachable::Other(_) => ReplyKind::Unreachable,
            },
            IcmpKind::PacketTooBig { .. } => ReplyKind::PacketTooBig,
            IcmpKind::ParameterProblem { .. } => ReplyKind::ParameterProblem,
            IcmpKind::EchoRequest => ReplyKind::EchoRequest,
            IcmpKind::Other => ReplyKind::OtherIcmp,
        }
    }
}

impl From<AnswerKind> for ReplyKind {
    fn from(k: AnswerKind) -> Self {
        match k {
            AnswerKind::Icmp(k) => k.into(),
            AnswerKind::Tcp(t) if t.rst => ReplyKind::TcpRst,
            AnswerKind::Tcp(_) => ReplyKind::TcpSynAck,
            AnswerKind::Udp(_) => ReplyKind::StampReply,
        }
    }
}

impl fmt::Display for ReplyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON strings are the public contract (README): serde and `as_str` agree, and the
    /// names stay exactly these.
    #[test]
    fn json_names_are_pinned() {
        let want = [
            "echo reply",
            "time exceeded",
            "reassembly time exceeded",
            "net unreachable",
            "host unreachable",
            "protocol unreachable",
            "port unreachable",
            "fragmentation needed",
            "source route failed",
            "admin prohibited",
            "beyond scope",
            "unreachable",
            "packet too big",
            "parameter problem",
            "echo request",
            "other icmp",
            "tcp rst",
            "tcp syn-ack",
            "stamp reply",
        ];
        assert_eq!(ReplyKind::ALL.len(), want.len());
        for (k, s) in ReplyKind::ALL.iter().zip(want) {
            assert_eq!(k.as_str(), s);
            assert_eq!(serde_json::to_value(k).expect("json"), s);
            let back: ReplyKind = serde_json::from_value(s.into()).expect("parse");
            assert_eq!(back, *k);
        }
    }
}
