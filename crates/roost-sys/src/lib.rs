//! Socket options that no safe crate wraps, behind safe functions.
//!
//! Two today:
//! - `TCP_DEFER_ACCEPT`, which makes a listening socket report a connection
//!   only once the client has sent its first bytes. An MQTT client always
//!   speaks first (CONNECT, a TLS ClientHello, a WebSocket upgrade or a PROXY
//!   header), so the broker is woken once per connection instead of twice
//!   (accept, then the first read). std's (`TcpStreamExt::set_deferaccept`)
//!   is unstable.
//! - `IP_BIND_ADDRESS_NO_PORT`, for the load generator's source addresses: a
//!   socket bound to an address with port 0 before `connect` reserves an
//!   ephemeral port host-wide at `bind`; with the option the port is chosen at
//!   `connect`, unique per 4-tuple only, so tens of thousands of connections
//!   from one source address do not starve every other program on the host.
//!
//! Neither `socket2` nor `rustix` has these options, so this leaf crate makes
//! the system calls itself; every other crate keeps `unsafe_code` forbidden.
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::io;
use std::os::fd::AsFd;

/// Sets `TCP_DEFER_ACCEPT` on a listening TCP socket: a connection is queued
/// for `accept` when its first data arrives, or, for a client that stays
/// silent, once about `seconds` have passed (the kernel rounds up to its
/// SYN-ACK retransmission schedule: 1 s, 3 s, 7 s, ...). 0 turns it off.
///
/// Returns [`io::ErrorKind::Unsupported`] where the option does not exist
/// (every system but Linux and Android).
pub fn set_tcp_defer_accept(socket: impl AsFd, seconds: u32) -> io::Result<()> {
    imp::set_tcp_defer_accept(socket, seconds)
}

/// The `TCP_DEFER_ACCEPT` period in force on a listening socket, in seconds
/// (as the kernel rounded it; 0 when off).
pub fn tcp_defer_accept(socket: impl AsFd) -> io::Result<u32> {
    imp::tcp_defer_accept(socket)
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` on an IPv4 or IPv6 socket not yet bound:
/// a later `bind` to port 0 leaves the port unchosen until `connect`, which
/// picks one free for that 4-tuple instead of reserving it host-wide. Linux
/// only (4.2+); elsewhere [`io::ErrorKind::Unsupported`].
pub fn set_ip_bind_address_no_port(socket: impl AsFd, on: bool) -> io::Result<()> {
    imp::set_ip_bind_address_no_port(socket, on)
}

/// Whether `IP_BIND_ADDRESS_NO_PORT` is on for a socket.
pub fn ip_bind_address_no_port(socket: impl AsFd) -> io::Result<bool> {
    imp::ip_bind_address_no_port(socket)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code, reason = "setsockopt and getsockopt of one int option")]
mod imp {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd};

    pub(super) fn set_tcp_defer_accept(socket: impl AsFd, seconds: u32) -> io::Result<()> {
        let value = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
        set_int(socket, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, value)
    }

    pub(super) fn set_ip_bind_address_no_port(socket: impl AsFd, on: bool) -> io::Result<()> {
        // The option sits at the IPv4 level for IPv6 sockets too (the kernel's
        // inet_sock flag is shared).
        set_int(
            socket,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            libc::c_int::from(on),
        )
    }

    pub(super) fn ip_bind_address_no_port(socket: impl AsFd) -> io::Result<bool> {
        Ok(get_int(socket, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT)? != 0)
    }

    fn set_int(
        socket: impl AsFd,
        level: libc::c_int,
        name: libc::c_int,
        value: libc::c_int,
    ) -> io::Result<()> {
        let fd = socket.as_fd().as_raw_fd();
        // SAFETY: `fd` is borrowed from a live descriptor for the whole call;
        // the option value points at a `c_int` on this stack frame and the
        // length passed is exactly its size, which is what both int options
        // this crate sets read.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&raw const value).cast::<libc::c_void>(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn get_int(
        socket: impl AsFd,
        level: libc::c_int,
        name: libc::c_int,
    ) -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        let fd = socket.as_fd().as_raw_fd();
        // SAFETY: `fd` is borrowed from a live descriptor for the whole call;
        // `value` and `len` are live locals, `len` holds the size of `value`,
        // and the kernel writes at most `len` bytes into it.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                level,
                name,
                (&raw mut value).cast::<libc::c_void>(),
                &raw mut len,
            )
        };
        if rc == 0 {
            Ok(value)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub(super) fn tcp_defer_accept(socket: impl AsFd) -> io::Result<u32> {
        let value = get_int(socket, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT)?;
        u32::try_from(value).map_err(|_| io::Error::other("negative TCP_DEFER_ACCEPT"))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    use std::io;
    use std::os::fd::AsFd;

    pub(super) fn set_tcp_defer_accept(_socket: impl AsFd, _seconds: u32) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(super) fn tcp_defer_accept(_socket: impl AsFd) -> io::Result<u32> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(super) fn set_ip_bind_address_no_port(_socket: impl AsFd, _on: bool) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(super) fn ip_bind_address_no_port(_socket: impl AsFd) -> io::Result<bool> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn defer_accept_is_set_read_back_and_turned_off() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(tcp_defer_accept(&listener).unwrap(), 0, "off by default");
        set_tcp_defer_accept(&listener, 1).unwrap();
        assert_eq!(tcp_defer_accept(&listener).unwrap(), 1);
        // 5 s rounds up to three SYN-ACK retransmissions: 1 + 2 + 4 = 7 s.
        set_tcp_defer_accept(&listener, 5).unwrap();
        assert_eq!(tcp_defer_accept(&listener).unwrap(), 7);
        set_tcp_defer_accept(&listener, 0).unwrap();
        assert_eq!(tcp_defer_accept(&listener).unwrap(), 0);
    }

    #[test]
    fn bind_address_no_port_is_set_and_leaves_the_port_to_connect() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        assert!(!ip_bind_address_no_port(&socket).unwrap(), "off by default");
        set_ip_bind_address_no_port(&socket, true).unwrap();
        assert!(ip_bind_address_no_port(&socket).unwrap());
        let any_port: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any_port.into()).unwrap();
        // With the option, bind leaves the port at 0 (nothing reserved yet)...
        let bound = socket.local_addr().unwrap().as_socket().unwrap();
        assert_eq!(bound.port(), 0, "bind reserved a port: {bound}");
        // ...and connect picks one.
        socket
            .connect(&listener.local_addr().unwrap().into())
            .unwrap();
        let connected = socket.local_addr().unwrap().as_socket().unwrap();
        assert_ne!(connected.port(), 0);
    }

    #[test]
    fn a_socket_that_is_not_tcp_gets_an_error_not_a_crash() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(set_tcp_defer_accept(&udp, 1).is_err());
    }
}
