/* SPDX-License-Identifier: MIT */
/* A user's first program, built only from the installed tree (ringfence.h, pkg-config, the library):
 * exits 0 when every check holds. test_install.sh shows what it prints as TAP comments. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ringfence.h>

static int failed;

static void check(int pass, const char *what)
{
	printf("%s: %s\n", pass ? "ok" : "FAILED", what);
	failed |= !pass;
}

/* The platform proper needs KVM; without a /dev/kvm this program can open, say so and skip it. */
static void platform_round_trip(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("/dev/kvm: %s: rf_platform_create/destroy not tried\n", strerror(errno));
		return;
	}
	close(fd);
	rf_platform *p = NULL;
	int r = rf_platform_create(NULL, &p);
	if (r < 0)
		printf("rf_platform_create: %s\n", rf_last_error());
	check(r == 0 && p, "rf_platform_create on /dev/kvm");
	if (r < 0)
		return;
	struct rf_platform_info info;
	rf_platform_info(p, &info);
	check(info.max_vcpus > 0 && info.fpu_size > 0, "rf_platform_info");
	check(rf_platform_destroy(p) == 0, "rf_platform_destroy");
}

int main(void)
{
	check(strcmp(rf_vector_name(14), "#PF") == 0, "rf_vector_name(14) is #PF");

	/* An error path that needs no KVM: the sentence must name what failed. */
	struct rf_platform_options opts = { .kvm_path = "/nonexistent/ringfence-kvm" };
	rf_platform *p = NULL;
	int r = rf_platform_create(&opts, &p);
	check(r == -ENOENT && !p, "rf_platform_create on a missing device is -ENOENT");
	check(strstr(rf_last_error(), "/nonexistent/ringfence-kvm") != NULL, "rf_last_error names the device");
	printf("rf_last_error: %s\n", rf_last_error());

	platform_round_trip();
	return failed;
}
