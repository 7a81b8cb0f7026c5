/* main.c — the `klua` executable: LuaJIT with libklua linked in, lua-style
 * command line (script + args, -e, -l, -i, -v, -h), stdin as a script when it
 * is not a terminal, and the interactive REPL (lua/klua/repl.lua) otherwise.
 *
 * What lives here rather than in Lua: finding the Lua library next to the
 * executable, line editing (libedit by default, GNU readline with
 * `make READLINE=gnu`; our own key reader, so Ctrl-C at the prompt only clears
 * the line), and the SIGINT handler that interrupts a running chunk. Those
 * three are offered to Lua as the module `klua.host`. The REPL itself
 * (evaluation, printing, completion, help) is Lua.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifdef KLUA_GNU_READLINE
#include <readline/history.h>
#include <readline/readline.h>
#define LINE_EDITOR "GNU readline"
#else
#include <editline/readline.h> /* libedit's readline emulation */
#define LINE_EDITOR "libedit"
#endif

#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>

#include "klua.h"

static const char *progname = "klua";

/* ---- Ctrl-C ----------------------------------------------------------------
 * At the prompt SIGINT only raises a flag that the readline loop checks. While
 * Lua runs (klua.host.pcall / scripts) it sets a debug hook that raises
 * "interrupted!" at the next Lua instruction (the lua.c technique).
 * NOTE: a loop already running as a JIT-compiled trace never checks hooks; the
 * REPL compiles its chunks with jit.off so loops typed at the prompt stay
 * interruptible. If a hook stays unanswered, in the REPL the second Ctrl-C
 * says so and the third one ends the process; in a script the second does. */
enum { SIG_IDLE, SIG_READLINE, SIG_EVAL };
static volatile sig_atomic_t sig_mode = SIG_IDLE;
static volatile sig_atomic_t got_sigint, got_sigwinch, sig_unanswered, in_repl;
static lua_State *globalL;

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  sig_unanswered = 0;
  luaL_error(L, "interrupted!");
}

/* SIGINT from the terminal goes to any thread that does not block it, and
 * the OpenBLAS/OpenMP workers don't: pass it on to the main thread, whose
 * pselect() or Lua code must see it. */
static pid_t main_tid;

static void on_sigint(int sig) {
  if ((pid_t)syscall(SYS_gettid) != main_tid) {
    int saved = errno;
    syscall(SYS_tgkill, getpid(), main_tid, sig);
    errno = saved;
    return;
  }
  if (sig_mode == SIG_READLINE) {
    got_sigint = 1;
  } else if (sig_mode == SIG_EVAL) {
    sig_unanswered++;
    if (sig_unanswered == 2 && !in_repl) sig_unanswered = 3; /* a script: just end it */
    if (sig_unanswered == 2) {
      static const char msg[] =
          "\n(klua: still running: JIT-compiled Lua or a C call does not see Ctrl-C;"
          " press Ctrl-C again to quit)\n";
      ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
      (void)r;
    } else if (sig_unanswered >= 3) {
      signal(sig, SIG_DFL);
      raise(sig);
      return;
    }
    lua_sethook(globalL, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  } else if (!in_repl) {
    /* outside Lua and the REPL (reading a script from stdin): the default */
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

static void on_sigwinch(int sig) {
  if ((pid_t)syscall(SYS_gettid) != main_tid) {
    int saved = errno;
    syscall(SYS_tgkill, getpid(), main_tid, sig);
    errno = saved;
    return;
  }
  got_sigwinch = 1;
}

static void install_signal_handlers(void) {
  main_tid = (pid_t)syscall(SYS_gettid);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_sigint; /* no SA_RESTART: a blocking read returns EINTR */
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_sigwinch;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGWINCH, &sa, NULL);
}

/* Runs the function at stack index base+1 with nargs arguments under the
 * message handler at index base, with Ctrl-C armed. Returns the lua_pcall status. */
static int interruptible_call(lua_State *L, int nargs, int nresults, int msgh) {
  int prev = sig_mode;
  sig_mode = SIG_EVAL;
  sig_unanswered = 0;
  int status = lua_pcall(L, nargs, nresults, msgh);
  sig_mode = prev;
  if (prev != SIG_EVAL) lua_sethook(L, NULL, 0, 0); /* a Ctrl-C that came too late */
  return status;
}

/* ---- messages and tracebacks ---------------------------------------------- */

static const char *error_text(lua_State *L, int idx) {
  const char *msg = lua_tostring(L, idx);
  if (msg) return msg;
  if (luaL_callmeta(L, idx, "__tostring") && lua_isstring(L, -1)) return lua_tostring(L, -1);
  return lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
}

static int traceback_handler(lua_State *L) {
  const char *msg = error_text(L, 1);
  lua_getglobal(L, "debug");
  lua_getfield(L, -1, "traceback");
  lua_pushstring(L, msg);
  lua_pushinteger(L, 2);
  lua_call(L, 2, 1);
  return 1;
}

static int report(lua_State *L, int status) {
  if (status != 0) {
    int top = lua_gettop(L);
    fprintf(stderr, "%s: %s\n", progname, error_text(L, top));
    fflush(stderr);
    lua_settop(L, top - 1);
  }
  return status;
}

/* Calls the function below nargs arguments on the stack, with a traceback;
 * Ctrl-C interrupts it when `interruptible`. */
static int docall_mode(lua_State *L, int nargs, int nresults, int interruptible) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback_handler);
  lua_insert(L, base);
  int status = interruptible ? interruptible_call(L, nargs, nresults, base)
                             : lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return status;
}

static int docall(lua_State *L, int nargs, int nresults) {
  return docall_mode(L, nargs, nresults, 1);
}

/* ---- the klua.host module ---------------------------------------------------- */

/* host.pcall(msgh, f, ...) -> true, results... | false, msgh(err). Like xpcall,
 * but Ctrl-C raises "interrupted!" inside f. */
static int l_pcall(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int status = interruptible_call(L, lua_gettop(L) - 2, LUA_MULTRET, 1);
  lua_pushboolean(L, status == 0);
  lua_replace(L, 1);
  return lua_gettop(L);
}

/* ---- line editing ------------------------------------------------------------
 * Through the readline API subset that both libedit's readline emulation
 * (the default: BSD-licensed) and GNU readline (`make READLINE=gnu`) provide:
 * readline(), add_history(), stifle_history(), rl_getc_function,
 * rl_attempted_completion_function, rl_add_defun(), rl_done,
 * rl_resize_terminal(), rl_echo_signal_char(). The history file is read and
 * written here, as plain lines: the two libraries' own file formats differ.
 *
 * Ctrl-C at the prompt: readline runs synchronously with our key reader
 * (klua_getc), and SIGINT and SIGWINCH stay blocked except inside its
 * pselect(), so a Ctrl-C is never lost between a check and a wait. The reader
 * turns a Ctrl-C into the key C-c (whether the terminal sent the signal or,
 * with ISIG off, the byte), which is bound to interrupt_key: it sets rl_done,
 * which ends the line in GNU readline and makes libedit's el_gets() return.
 * readline() then returns normally, with the terminal restored: no longjmp
 * out of the library. */
enum { KEY_INTERRUPT = 3 };
static sigset_t wait_mask;          /* the mask inside pselect(): signals let in */
static int line_interrupted, editor_ready;
static int completer_ref = LUA_NOREF;

static int interrupt_key(int count, int key) {
  (void)count; (void)key;
  line_interrupted = 1;
  rl_done = 1;
  return 0;
}

/* While a line is read the terminal is kept at VMIN=0 (read never blocks);
 * the library restores its saved settings when the line ends. Checked on
 * every key: a mode change inside the library (a quoted insert) resets it.
 * NOTE: the tty driver flushes unread input when it sends SIGINT, so a byte
 * that pselect() reported can be gone when read() runs: a blocking read would
 * hang the prompt there. */
static void clear_vmin(int fd) {
  struct termios t;
  if (tcgetattr(fd, &t) == 0 && (t.c_cc[VMIN] != 0 || t.c_cc[VTIME] != 0)) {
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    tcsetattr(fd, TCSANOW, &t);
  }
}

#ifndef KLUA_GNU_READLINE
/* libedit prints the prompt before it leaves cooked mode (at the first key):
 * keys typed in between would be echoed twice and a ^D taken as the tty's
 * end of file. GNU readline prepares the terminal first; here we ask libedit
 * to, just before it prints the prompt. */
static int prepare_terminal(void) {
  rl_prep_terminal(0);
  return 0;
}
#endif

static int read_byte(int fd) {
  int was_readable = 0;
  clear_vmin(fd);
  for (;;) {
    if (got_sigint) {
      got_sigint = 0;
#ifdef KLUA_GNU_READLINE
      rl_echo_signal_char(SIGINT); /* libedit's only edits its display buffer: see l_readline */
#endif
      line_interrupted = 1;
      return KEY_INTERRUPT;
    }
    unsigned char c;
    ssize_t n = read(fd, &c, 1);
    if (n == 1) {
      if (c == KEY_INTERRUPT) line_interrupted = 1; /* ISIG off: the byte itself */
      return c;
    }
    if (n < 0 && errno != EINTR && errno != EAGAIN) return EOF;
    if (n == 0 && was_readable) {
      /* readable yet empty: end of input, unless a Ctrl-C just flushed it */
      sigset_t pending;
      sigpending(&pending);
      if (!sigismember(&pending, SIGINT)) return EOF;
    }
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(fd, &fds);
    int r = pselect(fd + 1, &fds, NULL, NULL, NULL, &wait_mask);
    if (got_sigwinch) {
      got_sigwinch = 0;
      rl_resize_terminal();
    }
    if (r < 0 && errno != EINTR) return EOF;
    was_readable = r > 0;
  }
}

#ifdef KLUA_GNU_READLINE
/* GNU readline reads bytes and decodes UTF-8 itself. */
static int klua_getc(FILE *stream) {
  return read_byte(stream ? fileno(stream) : STDIN_FILENO);
}
#else
/* libedit's readline emulation takes what this returns as one wide
 * character: a UTF-8 sequence is decoded here into its code point (an
 * invalid one gives U+FFFD, and the byte that broke it is read again). */
static int pushed_back = -1;

static int klua_getc(FILE *stream) {
  int fd = stream ? fileno(stream) : STDIN_FILENO; /* libedit passes NULL */
  int c = pushed_back >= 0 ? pushed_back : read_byte(fd);
  pushed_back = -1;
  if (c < 0xC0 || c > 0xF4 || line_interrupted) return c;
  int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
  int cp = c & (0x3F >> more);
  for (int k = 0; k < more; k++) {
    int b = read_byte(fd);
    if (b == EOF || line_interrupted || (b & 0xC0) != 0x80) {
      pushed_back = b == EOF ? -1 : b;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  return cp;
}
#endif

/* Readline asks for completions of `text` (the word before the cursor, cut
 * at the word-break characters); the Lua completer gets it with the line up
 * to the cursor and returns the full candidate words. matches[0] must be
 * their longest common prefix. */
static char **attempted_completion(const char *text, int start, int end) {
  (void)start; (void)end; /* libedit counts them in characters, GNU in bytes */
  rl_attempted_completion_over = 1; /* never fall back to file names */
  rl_completion_append_character = '\0';
  lua_State *L = globalL;
  if (completer_ref == LUA_NOREF) return NULL;
  size_t point = rl_line_buffer && rl_point > 0 ? strnlen(rl_line_buffer, (size_t)rl_point) : 0;
  size_t tlen = strlen(text);
  if (tlen > point) tlen = point;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, completer_ref);
  lua_pushstring(L, text);
  lua_pushlstring(L, point ? rl_line_buffer : "", point);
  lua_pushinteger(L, (lua_Integer)(point - tlen + 1));
  lua_pushinteger(L, (lua_Integer)point);
  if (lua_pcall(L, 4, 1, 0) != 0 || !lua_istable(L, -1)) {
    lua_settop(L, top);
    return NULL;
  }
  int n = (int)lua_objlen(L, -1);
  char **m = n > 0 ? calloc((size_t)n + 2, sizeof *m) : NULL;
  int k = 0;
  size_t lcp = 0;
  for (int i = 1; m && i <= n; i++) {
    lua_rawgeti(L, -1, i);
    const char *s = lua_tostring(L, -1);
    if (s) {
      char *c = strdup(s);
      if (!c) { lua_pop(L, 1); break; }
      if (k == 0) lcp = strlen(c);
      else {
        size_t j = 0;
        while (j < lcp && c[j] == m[1][j]) j++;
        lcp = j;
      }
      m[++k] = c;
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  if (!m || k == 0) { free(m); return NULL; }
  m[0] = strndup(m[1], lcp);
  if (!m[0]) { for (int i = 1; i <= k; i++) free(m[i]); free(m); return NULL; }
  if (k == 1) { free(m[0]); m[0] = m[1]; m[1] = NULL; }
  return m;
}

/* '.' and ':' are not breaks: `klua.layers.De` and `x:res` complete as one word. */
static char word_breaks[] = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]})";

/* Set up on the first prompt only: scripts never pay for it. */
static void init_line_editor(void) {
  if (editor_ready) return;
  editor_ready = 1;
  /* UTF-8 input: libedit decodes keys with the C library's multibyte functions,
   * which drop every non-ASCII byte in the default "C" locale. Only LC_CTYPE:
   * number formatting (LC_NUMERIC) stays "C" for Lua. */
  const char *loc = setlocale(LC_CTYPE, "");
  if (!loc || MB_CUR_MAX == 1) setlocale(LC_CTYPE, "C.UTF-8");
  rl_readline_name = "klua"; /* $if klua in ~/.inputrc; libedit reads ~/.editrc */
  rl_catch_signals = 0;      /* our handlers, see l_readline */
  rl_catch_sigwinch = 0;
  rl_getc_function = klua_getc;
  rl_attempted_completion_function = attempted_completion;
  rl_completer_word_break_characters = word_breaks;
#ifndef KLUA_GNU_READLINE
  rl_basic_word_break_characters = word_breaks; /* what libedit's rl_complete cuts at */
  rl_pre_input_hook = prepare_terminal;
#endif
  rl_initialize();
  rl_add_defun("klua-interrupt", interrupt_key, KEY_INTERRUPT);
#ifdef KLUA_GNU_READLINE
  rl_basic_quote_characters = NULL; /* a `"` before the word is not a delimiter to re-append */
  rl_bind_key_in_map(KEY_INTERRUPT, interrupt_key, vi_insertion_keymap);
  rl_bind_key_in_map(KEY_INTERRUPT, interrupt_key, vi_movement_keymap);
#endif
}

/* host.set_completer(fn(text, line_to_cursor, start, stop) -> {candidates}) */
static int l_set_completer(lua_State *L) {
  if (completer_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, completer_ref);
  completer_ref = LUA_NOREF;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    completer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

/* Without a terminal: print the prompt (minus readline's \001/\002 markers)
 * and read one line. */
static int plain_readline(lua_State *L, const char *prompt) {
  for (const char *p = prompt; *p; p++)
    if (*p != '\001' && *p != '\002') fputc(*p, stdout);
  fflush(stdout);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int got = 0, c;
  sig_mode = SIG_READLINE;
  got_sigint = 0;
  while ((c = getchar()) != EOF && c != '\n') {
    luaL_addchar(&b, (char)c);
    got = 1;
  }
  sig_mode = SIG_IDLE;
  if (c == EOF && got_sigint) {
    clearerr(stdin);
    lua_pushboolean(L, 0);
    return 1;
  }
  luaL_pushresult(&b);
  if (c == EOF && !got) lua_pushnil(L);
  return 1;
}

/* host.readline(prompt) -> line | nil (end of input) | false (Ctrl-C) */
static int l_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  if (!isatty(STDIN_FILENO)) return plain_readline(L, prompt);
  init_line_editor();

  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGWINCH);
  sigprocmask(SIG_BLOCK, &block, &wait_mask);
  got_sigint = 0;
  line_interrupted = 0;
#ifndef KLUA_GNU_READLINE
  pushed_back = -1;
#endif
  sig_mode = SIG_READLINE;
  fflush(stdout);
  char *line = readline(prompt);
  sig_mode = SIG_IDLE;
  sigprocmask(SIG_SETMASK, &wait_mask, NULL);
  if (line_interrupted) {
    free(line);
#ifndef KLUA_GNU_READLINE
    fputs("^C", stdout);
#endif
    fputc('\n', stdout);
    fflush(stdout);
    lua_pushboolean(L, 0);
  } else if (line) {
    lua_pushstring(L, line);
    free(line);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

static int l_add_history(lua_State *L) {
  init_line_editor();
  add_history(luaL_checkstring(L, 1));
  return 0;
}

/* host.load_history(path, max): the file's last max lines (a missing file is
 * fine) become the history; a longer file is cut to them. One entry a line,
 * plain text: a libedit-format file's "_HiStOrY_V2_" header line is skipped. */
static int l_load_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int max = (int)luaL_optinteger(L, 2, 1000);
  if (max < 1) max = 1;
  init_line_editor();
  stifle_history(max);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char **ring = calloc((size_t)max, sizeof *ring);
  if (!ring) { fclose(f); return 0; }
  long total = 0;
  char *buf = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&buf, &cap, f)) >= 0) {
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = '\0';
    if (len == 0 || (total == 0 && strcmp(buf, "_HiStOrY_V2_") == 0)) continue;
    char **slot = &ring[total % max];
    free(*slot);
    *slot = strdup(buf);
    total++;
  }
  free(buf);
  fclose(f);
  long kept = total < max ? total : max;
  for (long i = total - kept; i < total; i++)
    if (ring[i % max]) add_history(ring[i % max]);
  if (total > max) { /* rewrite the file with the kept lines: temporary + rename */
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    int fd = tmp ? (snprintf(tmp, n, "%s.tmp%d", path, (int)getpid()),
                    open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600)) : -1;
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (out) {
      int ok = 1;
      for (long i = total - kept; i < total; i++)
        if (ring[i % max] && fprintf(out, "%s\n", ring[i % max]) < 0) ok = 0;
      if (fclose(out) != 0) ok = 0;
      if (!ok || rename(tmp, path) != 0) unlink(tmp);
    } else if (fd >= 0) {
      close(fd);
      unlink(tmp);
    }
    free(tmp);
  }
  for (int i = 0; i < max; i++) free(ring[i]);
  free(ring);
  return 0;
}

/* host.append_history(path, line): write the entry now, so history survives
 * a crash or a killed terminal. The file is private (it may hold secrets). */
static int l_append_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t n;
  const char *line = luaL_checklstring(L, 2, &n);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  /* one write: concurrent sessions' lines do not interleave */
  char *rec = malloc(n + 1);
  ssize_t w = -1;
  if (rec) {
    for (size_t i = 0; i < n; i++) rec[i] = line[i] == '\n' ? ' ' : line[i];
    rec[n] = '\n';
    w = write(fd, rec, n + 1);
    free(rec);
  }
  close(fd);
  lua_pushboolean(L, w == (ssize_t)(n + 1));
  return 1;
}

static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* host.clock() -> monotonic seconds, for %time */
static int l_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
  return 1;
}

/* "klua 0.1.0 (LuaJIT 2.1.0-beta3)"; kl_version() may or may not say "klua". */
static const char *version_string(lua_State *L) {
  const char *v = kl_version();
  return lua_pushfstring(L, "%s%s (%s)", strncmp(v, "klua", 4) == 0 ? "" : "klua ", v, LUAJIT_VERSION);
}

static int l_version(lua_State *L) {
  version_string(L);
  return 1;
}

/* host.line_editor() -> "libedit" | "GNU readline": what this build links */
static int l_line_editor(lua_State *L) {
  lua_pushstring(L, LINE_EDITOR);
  return 1;
}

static int luaopen_klua_host(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"pcall", l_pcall},
      {"readline", l_readline},
      {"set_completer", l_set_completer},
      {"add_history", l_add_history},
      {"load_history", l_load_history},
      {"append_history", l_append_history},
      {"isatty", l_isatty},
      {"clock", l_clock},
      {"version", l_version},
      {"line_editor", l_line_editor},
      {NULL, NULL},
  };
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}

/* ---- start-up ------------------------------------------------------------------ */

/* package.path gets the Lua library beside the executable first: the source
 * tree (build/klua -> lua/) and the installed layout (bin/klua ->
 * share/lua/5.1/, where LuaJIT itself looks too), so `require("klua")` needs
 * no LUA_PATH. */
static void set_package_path(lua_State *L) {
  char self[PATH_MAX], root[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (!slash) return;
  strcpy(slash, "/..");
  if (!realpath(self, root)) return;
  lua_getglobal(L, "package");
  lua_pushfstring(L,
                  "%s/lua/?.lua;%s/lua/?/init.lua;"
                  "%s/share/lua/5.1/?.lua;%s/share/lua/5.1/?/init.lua;",
                  root, root, root, root);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
}

static void print_usage(FILE *f) {
  fprintf(f,
          "usage: %s [options] [script [args...]]\n"
          "Runs klua (LuaJIT with the klua deep-learning library built in).\n"
          "\n"
          "  -e code    run the Lua string code\n"
          "  -l name    require library name into global name\n"
          "  -i         enter the interactive REPL after running script/-e\n"
          "  -v         print the version\n"
          "  -h         print this help\n"
          "  --         stop handling options\n"
          "  -          run standard input as the script\n"
          "\n"
          "With no script: the REPL on a terminal, otherwise standard input is run as\n"
          "a script. Inside scripts, `local klua = require(\"klua\")`.\n"
          "REPL: help() for its commands; Ctrl-C interrupts, Ctrl-D exits.\n",
          progname);
}

/* arg[0] = script, arg[1..] = its arguments, arg[-k] = the interpreter and
 * its options, exactly as lua and luajit set it. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - script, script);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int run_string(lua_State *L, const char *code, const char *name) {
  int status = luaL_loadbuffer(L, code, strlen(code), name);
  if (status == 0) status = docall(L, 0, 0);
  return report(L, status);
}

static int run_require(lua_State *L, const char *name) {
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  int status = docall(L, 1, 1);
  if (status == 0) lua_setglobal(L, name);
  return report(L, status);
}

/* Runs the script argv[script] ("-" or NULL = stdin) with argv[script+1..] as `...`. */
static int run_script(lua_State *L, const char *fname, char **argv, int argc, int script) {
  int status = luaL_loadfile(L, fname);
  if (status == 0) {
    int nargs = argc - script - 1;
    if (nargs < 0) nargs = 0;
    luaL_checkstack(L, nargs, "too many arguments to script");
    for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
    status = docall(L, nargs, 0);
  }
  return report(L, status);
}

/* The REPL's own code runs with Ctrl-C ignored; it arms it (klua.host.pcall)
 * around what the user typed. */
static int run_repl(lua_State *L) {
  in_repl = 1;
  sig_mode = SIG_IDLE;
  lua_getglobal(L, "require");
  lua_pushstring(L, "klua.repl");
  int status = docall_mode(L, 1, 1, 0);
  if (status == 0) {
    lua_getfield(L, -1, "start");
    lua_remove(L, -2);
    status = docall_mode(L, 0, 0, 0);
  }
  return report(L, status);
}

int main(int argc, char **argv) {

  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "%s: cannot create the Lua state: not enough memory\n", progname);
    return 1;
  }
  globalL = L;
  luaL_openlibs(L);
  /* Tells lua/klua/core.lua that libklua's symbols are already in the process. */
  lua_pushboolean(L, 1);
  lua_setglobal(L, "KLUA_EMBEDDED");
  set_package_path(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_klua_host);
  lua_setfield(L, -2, "klua.host");
  lua_pop(L, 2);
  install_signal_handlers();

  /* First pass: find the script and the flags that change what runs. */
  int script = argc, want_repl = 0, has_v = 0, has_e = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || strcmp(a, "-") == 0) { script = i; break; }
    if (strcmp(a, "--") == 0) { if (i + 1 < argc) script = i + 1; break; }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      print_usage(stdout);
      lua_close(L);
      return 0;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      has_v = 1;
    } else if (strcmp(a, "-i") == 0) {
      want_repl = 1;
    } else if (a[1] == 'e' || a[1] == 'l') {
      if (a[1] == 'e') has_e = 1;
      if (a[2] == '\0' && ++i >= argc) {
        fprintf(stderr, "%s: '%s' needs an argument\n", progname, a);
        print_usage(stderr);
        lua_close(L);
        return 1;
      }
    } else {
      fprintf(stderr, "%s: unrecognized option '%s'\n", progname, a);
      print_usage(stderr);
      lua_close(L);
      return 1;
    }
  }
  create_arg_table(L, argv, argc, script);

  if (has_v) {
    printf("%s\n", version_string(L));
    lua_pop(L, 1);
    fflush(stdout);
  }
  /* Second pass: -e and -l in the order given. */
  int status = 0;
  for (int i = 1; i < script && status == 0; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) break;
    if (a[0] == '-' && (a[1] == 'e' || a[1] == 'l')) {
      const char *val = a[2] ? a + 2 : argv[++i];
      status = a[1] == 'e' ? run_string(L, val, "=(command line)") : run_require(L, val);
    }
  }
  if (status == 0 && script < argc) {
    const char *fname = strcmp(argv[script], "-") == 0 && strcmp(argv[script - 1], "--") != 0
                            ? NULL
                            : argv[script];
    status = run_script(L, fname, argv, argc, script);
    /* Like python -i: after a failing script the REPL still opens, to inspect. */
  }
  if (want_repl) {
    int rs = run_repl(L);
    if (status == 0) status = rs;
  } else if (script == argc && !has_e && !has_v) {
    if (isatty(STDIN_FILENO)) status = run_repl(L);
    else status = run_script(L, NULL, argv, argc, script);
  }
  lua_close(L);
  return status == 0 ? 0 : 1;
}
