//! When a request reached the gateway: the kernel's receive time of its first
//! bytes (`SO_TIMESTAMPNS`), not the time the connection's thread got to it.
//!
//! A gateway on a host of its own sees arrivals within microseconds of the
//! wire. The mock shares this machine's cores with the client under test and
//! serves each connection from a thread of its own: on two busy cores, that
//! thread wakes up to a millisecond after the bytes came, and a leaky bucket
//! judged on its wake-up time rejects requests that were sent on time. The
//! kernel's stamp is taken as the bytes are queued on the socket; elsewhere
//! than Linux the mock falls back to its own clock.

use std::io;
use std::net::TcpStream;
use std::time::SystemTime;

/// Asks the kernel to stamp what `socket` receives (a no-op where it
/// cannot). Set on the listener, it holds for every connection accepted, and
/// the kernel, which turns stamping on a little after the first such request,
/// has it on before the first request comes.
#[cfg(target_os = "linux")]
pub(crate) fn enable_stamps(socket: &impl std::os::fd::AsFd) -> io::Result<()> {
    nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::ReceiveTimestampns, &true)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn enable_stamps<T>(_socket: &T) -> io::Result<()> {
    Ok(())
}

/// Reads into `buf` like `Read::read`; with the bytes, when they came (the
/// kernel's stamp, or now where there is none).
pub(crate) fn read_arrival(stream: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, SystemTime)> {
    let (n, stamp) = read_stamped(stream, buf)?;
    Ok((n, stamp.unwrap_or_else(SystemTime::now)))
}

/// Reads into `buf`; with the bytes, the kernel's stamp, if it gave one.
#[cfg(target_os = "linux")]
fn read_stamped(stream: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut iov = [IoSliceMut::new(buf)];
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )?;
    let stamp = message.cmsgs()?.find_map(|cmsg| match cmsg {
        ControlMessageOwned::ScmTimestampns(at) => {
            let since_epoch = Duration::new(
                u64::try_from(at.tv_sec()).ok()?,
                u32::try_from(at.tv_nsec()).ok()?,
            );
            Some(SystemTime::UNIX_EPOCH + since_epoch)
        }
        _ => None,
    });
    Ok((message.bytes, stamp))
}

#[cfg(not(target_os = "linux"))]
fn read_stamped(stream: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    use std::io::Read;
    Ok(((&*stream).read(buf)?, None))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::time::Duration;

    #[test]
    fn bytes_are_stamped_when_they_came_not_when_they_are_read() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        enable_stamps(&listener).unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        // The kernel turns stamping on a little after it is first asked.
        for _ in 0..20 {
            let before = SystemTime::now();
            client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
            let sent = SystemTime::now();
            // The connection's thread gets to it late.
            std::thread::sleep(Duration::from_millis(50));
            let mut buf = [0u8; 64];
            let (n, stamp) = read_stamped(&server, &mut buf).unwrap();
            assert_eq!(n, 18);
            let Some(arrived) = stamp else { continue };
            assert!(
                arrived >= before && arrived <= sent,
                "{arrived:?} not in {before:?}..{sent:?}"
            );
            return;
        }
        panic!("no receive time from the kernel in 20 tries");
    }
}
