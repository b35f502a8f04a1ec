/* A static probe run inside droot jails by the integration tests: it reports what the jailed
 * process holds and attempts the escapes the jail must block. Exit 0 = the attempt succeeded. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

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

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "status")) return status();
    if (argc >= 2 && !strcmp(argv[1], "fds")) return fds();
    if (argc >= 3 && !strcmp(argv[1], "bind")) return bind_port(atoi(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "chroot-escape")) return chroot_escape(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "fd-escape")) return fd_escape(atoi(argv[2]), argv[3]);
    fprintf(stderr, "usage: probe status | fds | bind PORT | chroot-escape HOSTFILE | fd-escape FD RELPATH\n");
    return 2;
}
