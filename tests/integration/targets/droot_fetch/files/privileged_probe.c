/* Copyright: droot.core contributors
 * GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
 *
 * What a host user gains by running a binary of a release: setuid(0) succeeds for a setuid-root
 * copy (euid 0 from exec) and for a copy with the file capability cap_setuid. Prints "euid=N";
 * exits 0 only with euid 0. Built static, so it runs without the release's libraries.
 */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    if (setuid(0) != 0)
        perror("setuid(0)");
    printf("euid=%d\n", (int)geteuid());
    return geteuid() == 0 ? 0 : 1;
}
