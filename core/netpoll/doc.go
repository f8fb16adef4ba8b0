// Package netpoll is anx's network reactor: epoll loops that own
// non-blocking sockets, so that a connection with nothing to do costs a
// struct and no goroutine, and a hierarchical timing wheel for their
// deadlines.
//
// # Loops and accepting
//
// Server.Start opens one listening socket per loop, all bound to the same
// address with SO_REUSEPORT, and runs one goroutine per loop (GOMAXPROCS
// by default). The kernel spreads new connections over the sockets by a
// hash of the 4-tuple, so no goroutine hands connections around and no
// lock is shared on accept. The cost: the spread is by hash, not by load,
// and connections still in a socket's accept queue when it closes are
// reset (Shutdown stops accepting first, so this only bites at exit).
// accept4 gives SOCK_NONBLOCK|SOCK_CLOEXEC sockets, which get TCP_NODELAY.
//
// A Server's Admitter (a connection limit) is asked right after accept4,
// with the peer's address: a refused socket is closed with SO_LINGER 0
// (a reset, no TIME_WAIT) before it is registered, so it costs no read,
// no handshake and no Conn. An admitted connection carries flagAdmitted
// and is released in finish, the one place every connection ends, so
// each Admit has exactly one Release whatever closes it. Without an
// Admitter the cost is one nil check per accept and a flag test per close.
//
// # Edge-triggered
//
// A connection is registered once, for EPOLLIN|EPOLLOUT|EPOLLRDHUP with
// EPOLLET, and never modified: no epoll_ctl per request to arm or disarm
// EPOLLOUT, and pausing a connection (Pause, while its request is served
// off the loop or its output is backed up) costs nothing, where
// level-triggered epoll would report the unread input on every wait
// until the interest set was changed. A paused connection reads nothing,
// so it would not see its peer go; a HangupHandler is told when a FIN or
// a reset arrives meanwhile. The price is that an edge must not
// be lost: a read that fills the whole buffer is followed by another (a
// short read means the socket was drained, and new bytes raise a new
// edge), at most four per wake-up for fairness, after which the
// connection goes on the loop's ready list and the next epoll_wait does
// not block. A spurious EPOLLOUT edge (an ACK freeing send space with
// nothing queued) costs one check. The listening socket and the wake-up
// eventfd are level-triggered, so that a batch limit on accept loses
// nothing.
//
// # Memory
//
// The loop reads with readv into the free tail of the connection's input
// buffer (if it has one) and the loop's 64 KiB scratch buffer. The
// handler gets the bytes in place and returns how many it consumed; only
// an unconsumed remainder is copied into a buffer borrowed from
// core/pool, which goes back as soon as the handler has consumed it. Writes
// go straight to the socket; only what the socket does not take is copied
// into a pooled buffer, returned when it drains. So an idle connection
// holds no buffer, only its Conn (176 bytes, plus its timer callback and
// a slot in the loop's fd table: TestIdleConnMemory measures about 220
// bytes of heap per idle connection). The Conn keeps its own Handler (see
// Outbound connections) and its peer's address in 18 bytes rather than a
// 32-byte netip.AddrPort, which pays for it.
//
// # Deadlines
//
// Each loop has a Wheel with 5 ms ticks and 64 slots per level; each
// connection embeds one Timer (SetTimeout), which the protocol moves
// between its phases (handshake, request head, keep-alive, write). Adding
// and cancelling are O(1) and allocate nothing; the loop's epoll_wait
// sleeps until the wheel's next deadline.
//
// # Threads
//
// A loop's goroutine is not locked to an OS thread by default
// (Server.LockOSThread). epoll_wait blocks its thread either way; locking
// only keeps the goroutine from moving. In BenchmarkEcho on two cores with
// the clients in the same process, the difference between locked and not
// was smaller than the spread between runs, so the option exists but is
// off until a measurement on the real workload says otherwise.
//
// # Files
//
// SendFile uses sendfile(2) at an explicit offset and continues on
// EPOLLOUT; several may be queued, in order with the bytes written
// between them, and a send that has to wait keeps a duplicate of the
// descriptor. The loop never waits for a disk: before each 2 MiB window
// of a file it asks cachestat(2) (Resident) whether the pages are cached,
// and when they are not, one of a small bounded pool of file workers
// reads them (Warm) while the connection's output waits. ReadNoWait
// (preadv2 with RWF_NOWAIT) serves protocols that copy small files
// instead. Sends of at least Server.DropBehind bytes drop the pages they
// have sent from the page cache as they go (DropCache, lagging by what
// the socket still holds), so that one large download does not push the
// small hot files out: TestDropBehindKeepsHotFiles measures it in a 32 MiB
// memory cgroup. Known gaps: on kernels before 6.5, which lack cachestat(2),
// Resident falls back to mincore(2), which reports every page cached for a
// file the process could not write, so such files are sent without the
// check; and the pages still in flight when a send ends stay cached.
//
// While a file is queued the socket is corked (TCP_CORK, nginx's
// tcp_nopush): it sends full-sized segments only, and uncorks when the
// last queued file has gone. Bytes queued before a file, and bytes written
// with WriteMore (send with MSG_MORE: a response head written just before
// its SendFile), join the file's first bytes in one segment instead of
// leaving alone. This is not about the one packet saved: Linux sizes a
// receive buffer from the round-trip time the receiver measures, and it
// takes that measurement only on a full-sized segment that echoes a new
// timestamp, which a response head sent alone (a small segment echoing
// the request's timestamp) used up. On loopback with a 10 MiB file (wrk
// -c4, 2 cores) the client's buffers then stayed at 128-800 KiB, with the
// sender limited by the receive window most of the time; with the head
// joined to the file they can grow to 1-30 MiB, as they do for nginx. They
// do not always: the timestamps count milliseconds, so the receiver's
// sample is zero (and ignored) unless the segment arrives in a later
// millisecond than the one it echoes, which depends on timing. So the
// load is bimodal per run. Over 15 runs each
// (make bench -only h1-plain-10m -servers anx,nginx -interleave, a shared
// machine), anx's median went from 1063 to 1121 MB/s, and its runs above
// 1200 MB/s from 0 to 6 (nginx: 15 of 30, median 1217): a better chance of
// the large buffers, not yet nginx's.
//
// # Outbound connections
//
// Loop.Dial opens a connection from a loop to an upstream (TCP to an IP
// address, or a Unix socket), so that a proxy's upstream connections live
// on the same loop as the client connections they serve, as nginx's and
// h2o's do: no goroutine, no lock and no hand-off between the two sides,
// which run on one goroutine and find each other's state through
// Context/SetContext. Dial runs on the loop's goroutine (in a Handler
// method, or a function given to Submit; Server.Loop finds a loop), makes
// a non-blocking socket (TCP_NODELAY for TCP), starts connect(2) and
// returns the Conn at once. It has its own Handler, kept in the Conn (the
// accepted connections keep the Server's there, so their path is as
// before). It is registered once, like an accepted one, after connect(2)
// has started; its first EPOLLOUT, with SO_ERROR clear, runs OnOpen. A
// connect that fails (refused, a full Unix backlog, the timeout set with
// SetTimeout before OnOpen, Shutdown) ends in OnClose with a
// *ConnectError wrapping the errno or ErrTimeout or ErrServerClosed, with
// no OnOpen and nothing sent. Output written before OnOpen is queued and
// sent once connected. Dialed connections count as the loop's for Shutdown,
// which closes them with ErrServerClosed (a connecting one at once) and
// calls OnDrain only if their own Handler is a Drainer: the Server's
// Drainer is never asked about them. Once open they may be detached like
// accepted ones. Dial allocates the Conn and its timer callback
// (TestDialAllocs); BenchmarkDial measures a whole connect, open and close.
//
// # TLS
//
// TLSConn puts crypto/tls on a loop: the handshake runs on a goroutine
// with a blocking view (crypto/tls cannot resume a handshake after a
// would-block), the established connection is read on the loop, and an
// idle one holds no goroutine. See TLSConn for exactly what crypto/tls
// allows.
//
// # Signals
//
// Writes use write, writev and sendfile, which cannot take MSG_NOSIGNAL.
// The Go runtime ignores SIGPIPE for descriptors other than 1 and 2 unless
// the program asks for it with signal.Notify, so a write to a reset peer
// fails with EPIPE (TestWriteToResetPeer); a program that does Notify
// SIGPIPE receives those signals.
package netpoll
