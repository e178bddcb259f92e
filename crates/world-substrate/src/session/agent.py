# WorldRuntime session agent (embedded in world-substrate; the interpreter
# gets it in $WORLD_AGENT, see AGENT_BOOT). Serves one persistent Python namespace on a
# Unix listening socket (fd 3). Requests: 4-byte little-endian length + JSON,
# with fds (SCM_RIGHTS); reply: one JSON line, then close.
#   run       fds [stdout, stderr]   execute code, Jupyter-like
#   snapshot  fds [listener]   fork a template; the template keeps the
#             connection until the host writes one byte on it (or hangs
#             up): by then the host has moved it to the snapshot's cgroup
#   branch_many (to a template) {"children": [{world, seed, apply_seed}...]}
#             fds: per child [listener, ready, net, uts, ipc, cgroup, pid,
#             mnt]   fork one session per child into its new world (the
#             host moves each into its world's cgroups: no cgroup file
#             reaches us); one reply for the batch, {"ok", "pids"}
#   ping      {"ok", "pid"}; a template adds "batches": true
# Fixed fds: 3 listener, 4 lineage pid ns, 5 world pid ns, 6 ready socket.
import ast, base64, builtins, ctypes, gc, io, json, linecache, os, random, signal
import socket, struct, sys, time, traceback

FD_LISTEN, FD_LPID, FD_WPID, FD_READY = 3, 4, 5, 6
CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x20000000, 0x40000000
CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP = 0x4000000, 0x8000000, 0x2000000
NS_ORDER = [CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP,
            CLONE_NEWPID, CLONE_NEWNS]
_libc = ctypes.CDLL(None, use_errno=True)
_ns = {"__name__": "__main__", "__builtins__": builtins}
_cell = [0]
_state = {"seed": None, "apply_seed": True}


def _setns(fd, kind):
    if _libc.setns(fd, kind) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: " + os.strerror(e))


def _prctl_name(name):
    _libc.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)  # PR_SET_NAME


MAX_FDS = 253  # SCM_MAX_FD: what one message can carry


def _recv(conn):
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, MAX_FDS)
    if not data:
        return None, []
    while len(data) < 4:
        more = conn.recv(1 << 16)
        if not more:
            return None, fds
        data += more
    n = struct.unpack("<I", data[:4])[0]
    while len(data) < 4 + n:
        more = conn.recv(1 << 16)
        if not more:
            return None, fds
        data += more
    return json.loads(data[4:4 + n]), fds


def _reply(conn, obj):
    conn.sendall((json.dumps(obj) + "\n").encode())


class _Timeout(KeyboardInterrupt):
    pass


class _Become(BaseException):
    """Raised in a process just forked from deep in the agent's stack (a
    template from a session, a session from a template): it unwinds that
    stack to `_main`, which then runs `fn(*args)` as the process's new
    role. Without it every generation of branches would run one level
    deeper in its ancestors' stack, and Python's recursion limit would end
    the line after a few hundred generations. The unwinding runs the
    `finally` blocks on the way; those that own something the new role
    keeps (`keeps`) leave it open."""

    def __init__(self, fn, args, keeps=()):
        BaseException.__init__(self, fn.__name__)
        self.fn, self.fn_args, self.keeps = fn, args, keeps


def _on_alarm(signum, frame):
    raise _Timeout("timeout")


def _run(code, timeout_ms):
    _cell[0] += 1
    fname = "<cell-%d>" % _cell[0]
    linecache.cache[fname] = (len(code), None, code.splitlines(True), fname)
    res = {"value": None, "error": None, "timed_out": False}
    t0 = time.monotonic()
    old = signal.signal(signal.SIGALRM, _on_alarm)
    if timeout_ms:
        signal.setitimer(signal.ITIMER_REAL, timeout_ms / 1000.0)
    try:
        tree = ast.parse(code, fname, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, fname, "exec"), _ns)
        if last is not None:
            v = eval(compile(last, fname, "eval"), _ns)
            if v is not None:
                _ns["_"] = v
                r = repr(v)
                res["value"] = r if len(r) <= 1 << 20 else r[: 1 << 20] + "..."
                res["formats"] = _formats(v)
    except _Timeout as e:
        signal.setitimer(signal.ITIMER_REAL, 0)
        res["timed_out"] = True
        res["error"] = _format(e, "KeyboardInterrupt: timeout after %d ms\n" % timeout_ms)
    except SyntaxError as e:
        res["error"] = "".join(traceback.format_exception_only(type(e), e))
    except BaseException as e:  # noqa: B902 - report everything, stay alive
        signal.setitimer(signal.ITIMER_REAL, 0)
        if isinstance(e, SystemExit):
            res["error"] = "SystemExit: %r (the session stays alive)\n" % (e.code,)
        else:
            res["error"] = _format(e, None)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    res["duration_ms"] = (time.monotonic() - t0) * 1000.0
    res["count"] = _cell[0]
    return res


# IPython's rich display methods and the MIME types they give.
_RICH = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
    ("_repr_javascript_", "application/javascript"),
)


def _formats(v):
    """The value's rich representations (IPython's `_repr_*_` methods),
    by MIME type: text as text, bytes as base64, JSON as JSON; at most
    8 MiB in all, and a method that fails is skipped."""
    out, left = {}, 8 << 20
    for meth, mime in _RICH:
        f = getattr(type(v), meth, None)
        if f is None:
            continue
        try:
            r = f(v)
        except Exception:  # noqa: BLE001 - user code; skip what fails
            continue
        if isinstance(r, tuple):
            r = r[0]
        if r is None:
            continue
        if isinstance(r, (bytes, bytearray)):
            r = base64.b64encode(bytes(r)).decode("ascii")
        elif mime == "application/json":
            try:
                json.dumps(r)
            except (TypeError, ValueError):
                continue
        elif not isinstance(r, str):
            continue
        size = len(r) if isinstance(r, str) else len(json.dumps(r))
        if size > left:
            continue
        left -= size
        out[mime] = r
    return out


def _format(e, last_line):
    tb = e.__traceback__
    # Drop the agent's own frames.
    while tb is not None and tb.tb_frame.f_code.co_filename in ("<string>", "<world-agent>"):
        tb = tb.tb_next
    lines = traceback.format_exception(type(e), e, tb)
    if last_line:
        lines[-1] = last_line
    return "".join(lines)


def _with_stdio(fds, fn):
    """Runs fn with fds[0]/fds[1] as fd 1/2 and sys.stdout/stderr."""
    saved = (os.dup(1), os.dup(2))
    out = err = None
    try:
        if len(fds) >= 2:
            os.dup2(fds[0], 1)
            os.dup2(fds[1], 2)
        for f in fds:
            os.close(f)
        out = io.open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
        err = io.open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.stdout, sys.stderr = out, err
        return fn()
    finally:
        for s in (sys.stdout, sys.stderr, out, err):
            try:
                if s is not None:
                    s.flush()
            except Exception:
                pass
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _keep_only(keep):
    """Closes every fd >= 3 not in keep (user files and sockets are not
    carried into templates or branches)."""
    lo = 3
    for k in sorted(set(keep)):
        if k > lo:
            os.closerange(lo, k)
        lo = max(lo, k + 1)
    os.closerange(lo, 1 << 20)


def _place(pairs):
    """dup2 each (src, dst) without clobbering a source that sits on some
    other pair's destination."""
    tmp = [(fcntl_dup(src), dst) for src, dst in pairs]
    for t, dst in tmp:
        os.dup2(t, dst, inheritable=False)
        os.close(t)


def fcntl_dup(fd):
    import fcntl
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100)


def _snapshot(fds, conn):
    listener = fds[0]
    for f in fds[1:]:
        os.close(f)
    cwd = os.getcwd()
    gc.freeze()  # objects move to the permanent generation: pages stay shared
    _setns(FD_LPID, CLONE_NEWPID)  # the template must be active in the lineage pid ns
    try:
        pid = os.fork()
    except BaseException:
        _setns(FD_WPID, CLONE_NEWPID)
        raise
    if pid != 0:
        _setns(FD_WPID, CLONE_NEWPID)
    if pid == 0:
        raise _Become(_template, (listener, cwd, conn), keeps=(conn,))
    gc.unfreeze()
    os.close(listener)
    return {"ok": True, "pid": pid}


def _template(listener, cwd, conn):
    """A copy of the session, frozen between branches by the host. Waits
    for branch requests; each one forks a session into a new world."""
    os.setsid()  # out of the session's process group: kill(0) there misses us
    # Stay put until the host has taken the snapshot's files and moved us
    # into the snapshot's cgroup; it writes one byte when done, or hangs
    # up (dies): either way, move on.
    try:
        conn.recv(1)
    except OSError:
        pass
    conn.close()
    _prctl_name("world-template")
    _place([(listener, FD_LISTEN)])
    _keep_only([FD_LISTEN, FD_LPID])
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves
    srv = socket.socket(fileno=FD_LISTEN)
    while True:
        conn, _ = srv.accept()
        try:
            while True:
                req, fds = _recv(conn)
                if req is None:
                    break
                if req.get("op") == "ping":
                    for f in fds:
                        os.close(f)
                    # "batches": this template takes branch_many (the host
                    # asks before it sends any fds).
                    _reply(conn, {"ok": True, "pid": os.getpid(), "batches": True})
                    continue
                if req.get("op") != "branch_many":
                    for f in fds:
                        os.close(f)
                    _reply(conn, {"error": "templates serve ping and branch_many"})
                    continue
                _reply(conn, _fork_children(req.get("children"), fds, cwd, conn, srv))
        except OSError:
            pass
        finally:
            conn.close()


def _fork_children(kids, fds, cwd, conn, srv):
    """Forks one session per child of a branch_many request; each takes
    its own 8 fds. Closes every fd it was given. Stops at the first
    failure: the reply names it and the pids forked before it."""
    pids = []
    forked = False
    try:
        if not isinstance(kids, list) or not kids or len(fds) != 8 * len(kids):
            n = len(kids) if isinstance(kids, list) else "no list of"
            return {"error": "branch_many: %d fds for %s children" % (len(fds), n)}
        for k, kid in enumerate(kids):
            mine = fds[8 * k:8 * k + 8]
            try:
                pid = os.fork()
            except OSError as e:
                return {"error": "fork: %s" % e, "pids": pids}
            if pid == 0:
                forked = True
                conn.close()
                srv.close()
                raise _Become(_branch_child, (kid if isinstance(kid, dict) else {}, mine, cwd))
            pids.append(pid)
        return {"ok": True, "pids": pids}
    finally:
        # The child's fds are its own (`_child` keeps what it needs).
        if not forked:
            for f in fds:
                try:
                    os.close(f)
                except OSError:
                    pass


def _branch_child(req, fds, cwd):
    """A session forked by a template for a new world: enters it, then
    serves. A failure is reported on the ready socket, and ends it."""
    try:
        _child(req, fds, cwd)
    except BaseException as e:  # report and die
        for fd in (fds[1], FD_READY):
            try:
                os.write(fd, ("branch child: %r" % (e,)).encode())
                break
            except Exception:
                pass
        os._exit(1)
    _serve()


def _child(req, fds, cwd):
    listener, ready, ns = fds[0], fds[1], fds[2:8]
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    for fd, kind in zip(ns, NS_ORDER):
        _setns(fd, kind)
    _place([(listener, FD_LISTEN), (ns[4], FD_WPID), (ready, FD_READY)])
    _keep_only([FD_LISTEN, FD_LPID, FD_WPID, FD_READY])
    try:
        os.chdir(cwd)
    except OSError:
        os.chdir("/")
    wid = req.get("world", "")
    os.environ["WORLD_ID"] = wid
    os.environ["HOSTNAME"] = socket.gethostname()
    seed = req.get("seed")
    _state["apply_seed"] = req.get("apply_seed", True)
    if seed is not None:
        os.environ["WORLD_SEED"] = str(seed)
        _state["seed"] = seed
        if _state["apply_seed"]:
            random.seed(seed)
    _prctl_name("world-session")


def _serve():
    srv = socket.socket(fileno=FD_LISTEN)
    try:
        os.write(FD_READY, b"ok")
    finally:
        os.close(FD_READY)
    while True:
        conn, _ = srv.accept()
        keep = False
        try:
            req, fds = _recv(conn)
            if req is None:
                continue
            op = req.get("op")
            if op == "run":
                r = _with_stdio(fds, lambda: _run(req.get("code", ""), req.get("timeout_ms")))
                _reply(conn, r)
            elif op == "snapshot":
                _reply(conn, _snapshot(fds, conn))
            elif op == "ping":
                for f in fds:
                    os.close(f)
                _reply(conn, {"ok": True, "pid": os.getpid()})
            else:
                for f in fds:
                    os.close(f)
                _reply(conn, {"error": "unknown op %r" % (op,)})
        except _Become as b:
            # A new process leaves: nothing of this loop may close an fd
            # of its new role later (a socket object closes on release).
            keep = conn in b.keeps
            srv.close()
            raise
        except Exception as e:
            try:
                _reply(conn, {"error": "agent: %r" % (e,)})
            except Exception:
                pass
        finally:
            if not keep:
                conn.close()


def _main():
    # Programs this session executes must not inherit CAP_SYS_ADMIN.
    _libc.prctl(24, 21, 0, 0, 0)  # PR_CAPBSET_DROP, CAP_SYS_ADMIN
    # Nor the agent's fixed fds (the listener, the pid namespaces, the
    # ready socket): they arrive inheritable (dup2) and would reach every
    # program the session runs (os.system, subprocess with close_fds=False).
    for fd in (FD_LISTEN, FD_LPID, FD_WPID, FD_READY):
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass
    _prctl_name("world-session")
    seed = os.environ.get("WORLD_SEED")
    _state["apply_seed"] = os.environ.pop("WORLD_APPLY_SEED", "1") == "1"
    if seed is not None and _state["apply_seed"]:
        random.seed(int(seed))
    sys.argv = [""]
    role = (_serve, ())
    while True:
        try:
            role[0](*role[1])
        except _Become as b:
            role = (b.fn, b.fn_args)
            continue
        except BaseException:
            pass
        # A role returned or failed: this process has nothing left to do
        # (a forked copy must never fall back into its parent's role).
        os._exit(1)


_main()
