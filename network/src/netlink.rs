//! A small synchronous rtnetlink client (netlink-packet-route + netlink-sys): links, bridge ports,
//! veth pairs across namespaces, addresses and routes. One socket per namespace: a socket opened
//! while a thread is inside a namespace keeps operating on that namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::cidr::Ipv4Cidr;
use crate::netns::{run_in, NetnsError, NetnsRef};

/// Errors of rtnetlink operations.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("open rtnetlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("open rtnetlink socket in namespace: {0}")]
    Netns(#[from] NetnsError),
    #[error("rtnetlink {op}: send: {source}")]
    Send {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("rtnetlink {op}: receive: {source}")]
    Recv {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("rtnetlink {op}: decode reply: {detail}")]
    Decode { op: String, detail: String },
    #[error("rtnetlink {op}: {source}")]
    Kernel {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("rtnetlink {op}: no link named {name:?}")]
    NoSuchLink { op: String, name: String },
}

impl NetlinkError {
    /// The errno the kernel answered with, if this is a kernel error.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// A link as seen in a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Index of the bridge (or other controller) this link is enslaved to.
    pub master: Option<u32>,
    /// `IFLA_INFO_KIND` (`veth`, `bridge`, …) when reported.
    pub kind: Option<String>,
    pub up: bool,
}

/// A synchronous rtnetlink socket bound to one network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

impl Netlink {
    /// A socket in the calling thread's namespace.
    pub fn new() -> Result<Self, NetlinkError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        sock.bind_auto().map_err(NetlinkError::Socket)?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        // Extended acks make the kernel's messages richer; failure to enable is harmless.
        let _ = sock.set_ext_ack(true);
        Ok(Self { sock, seq: 0 })
    }

    /// A socket operating on namespace `ns` (opened by a thread that entered it).
    pub fn in_netns(ns: &NetnsRef) -> Result<Self, NetlinkError> {
        run_in(ns, Netlink::new)?
    }

    fn request(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        req.finalize();
        let mut buf = vec![0u8; req.buffer_len()];
        req.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .map_err(|source| NetlinkError::Send {
                op: op.to_string(),
                source,
            })?;

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        loop {
            let (data, _) = self
                .sock
                .recv_from_full()
                .map_err(|source| NetlinkError::Recv {
                    op: op.to_string(),
                    source,
                })?;
            let mut offset = 0;
            while offset < data.len() {
                let msg: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&data[offset..]).map_err(|e| {
                        NetlinkError::Decode {
                            op: op.to_string(),
                            detail: e.to_string(),
                        }
                    })?;
                let len = msg.header.length as usize;
                let this_seq = msg.header.sequence_number;
                if len == 0 {
                    break;
                }
                offset += align4(len);
                if this_seq != seq {
                    continue; // a stale reply to an earlier request
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(replies),
                        Some(_) => {
                            return Err(NetlinkError::Kernel {
                                op: op.to_string(),
                                source: e.to_io(),
                            })
                        }
                    },
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(m) => {
                        replies.push(m);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn ack(&mut self, op: &str, msg: RouteNetlinkMessage, flags: u16) -> Result<(), NetlinkError> {
        self.request(op, msg, NLM_F_ACK | flags).map(|_| ())
    }

    /// All links of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, NetlinkError> {
        let replies = self.request(
            "dump links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from(l)),
                _ => None,
            })
            .collect())
    }

    /// The link called `name`, if any.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(
            &format!("get link {name}"),
            RouteNetlinkMessage::GetLink(msg),
            0,
        ) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from(l)),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn index(&mut self, op: &str, name: &str) -> Result<u32, NetlinkError> {
        self.link(name)?
            .map(|l| l.index)
            .ok_or_else(|| NetlinkError::NoSuchLink {
                op: op.to_string(),
                name: name.to_string(),
            })
    }

    /// Creates bridge `name` unless it exists; returns its index.
    pub fn ensure_bridge(&mut self, name: &str) -> Result<u32, NetlinkError> {
        if let Some(l) = self.link(name)? {
            return Ok(l.index);
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        let op = format!("create bridge {name}");
        self.ack(
            &op,
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        self.index(&op, name)
    }

    /// Creates a veth pair: `host` here, `peer` created directly inside namespace `peer_ns`.
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_ns: BorrowedFd<'_>,
    ) -> Result<u32, NetlinkError> {
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        peer_msg
            .attributes
            .push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        let op = format!("create veth {host} (peer {peer} in namespace)");
        self.ack(
            &op,
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        self.index(&op, host)
    }

    /// Enslaves `index` to bridge `master` and sets the port's isolation flag
    /// (`IFLA_BRPORT_ISOLATED`: isolated ports cannot exchange frames with each other).
    pub fn set_bridge_port(
        &mut self,
        index: u32,
        master: u32,
        isolated: bool,
    ) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Controller(master));
        self.ack(
            &format!("set master of link {index} to {master}"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )?;
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::Isolated(
                isolated,
            )])),
        ]));
        self.ack(
            &format!("set bridge port {index} isolated={isolated}"),
            RouteNetlinkMessage::NewLink(msg),
            0,
        )
    }

    /// Reads back the isolation flag of bridge port `index` (`None` if not a bridge port).
    pub fn bridge_port_isolated(&mut self, index: u32) -> Result<Option<bool>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        let replies = self.request(
            &format!("get link {index}"),
            RouteNetlinkMessage::GetLink(msg),
            0,
        )?;
        for m in replies {
            if let RouteNetlinkMessage::NewLink(l) = m {
                for a in l.attributes {
                    if let LinkAttribute::LinkInfo(infos) = a {
                        for i in infos {
                            if let LinkInfo::PortData(InfoPortData::BridgePort(opts)) = i {
                                for o in opts {
                                    if let InfoBridgePort::Isolated(v) = o {
                                        return Ok(Some(v));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Brings link `index` up.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.ack(
            &format!("set link {index} up"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
    }

    /// Brings the link called `name` up.
    pub fn set_up_by_name(&mut self, name: &str) -> Result<u32, NetlinkError> {
        let index = self.index(&format!("set link {name} up"), name)?;
        self.set_up(index)?;
        Ok(index)
    }

    /// Deletes link `index` (for a veth, both ends).
    pub fn delete_link(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.ack(
            &format!("delete link {index}"),
            RouteNetlinkMessage::DelLink(msg),
            0,
        )
    }

    /// Deletes the link called `name`; `Ok(false)` if it did not exist.
    pub fn delete_link_by_name(&mut self, name: &str) -> Result<bool, NetlinkError> {
        match self.link(name)? {
            None => Ok(false),
            Some(l) => match self.delete_link(l.index) {
                Ok(()) => Ok(true),
                Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
                Err(e) => Err(e),
            },
        }
    }

    /// Adds IPv4 address `addr` to link `index`; an already present address is not an error.
    pub fn add_address(&mut self, index: u32, addr: Ipv4Cidr) -> Result<(), NetlinkError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = addr.prefix();
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Local(IpAddr::V4(addr.addr())));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(addr.addr())));
        if addr.prefix() < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(addr.broadcast()));
        }
        match self.ack(
            &format!("add address {addr} to link {index}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Adds an IPv4 route in the main table: `dest` via `gateway` (or on-link) out of `oif`.
    /// An identical existing route is not an error.
    pub fn add_route(
        &mut self,
        dest: Ipv4Cidr,
        gateway: Option<Ipv4Addr>,
        oif: u32,
    ) -> Result<(), NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.destination_prefix_length = dest.prefix();
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Static;
        msg.header.scope = if gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        msg.header.kind = RouteType::Unicast;
        if dest.prefix() > 0 {
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(
                    dest.network(),
                )));
        }
        if let Some(gw) = gateway {
            msg.attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
        }
        msg.attributes.push(RouteAttribute::Oif(oif));
        let via = gateway.map(|g| format!(" via {g}")).unwrap_or_default();
        match self.ack(
            &format!("add route {dest}{via} dev {oif}"),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// IPv4 addresses of link `index`.
    pub fn addresses(&mut self, index: u32) -> Result<Vec<Ipv4Cidr>, NetlinkError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        let replies = self.request(
            "dump addresses",
            RouteNetlinkMessage::GetAddress(msg),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    let prefix = a.header.prefix_len;
                    a.attributes.into_iter().find_map(|attr| match attr {
                        AddressAttribute::Local(IpAddr::V4(ip)) => Ipv4Cidr::new(ip, prefix),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

fn link_from(l: LinkMessage) -> Link {
    let mut link = Link {
        index: l.header.index,
        name: String::new(),
        master: None,
        kind: None,
        up: l.header.flags.contains(LinkFlags::Up),
    };
    for a in l.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Controller(m) => link.master = Some(m),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        link.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}
