/* Shared generation counters; see shmgen.h. */
#include "store/shmgen.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/err.h"
#include "core/banned.h"

#define SIZE (GEN__COUNT * sizeof(uint64_t))

int shmgen_open(struct shmgen *g, const char *path)
{
	uint64_t zero[GEN__COUNT] = {0};

	g->c = NULL;
	g->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (g->fd < 0)
		return E(INTERNAL);
	/* extend (never truncate: another process may be using it) */
	if (lseek(g->fd, 0, SEEK_END) < (off_t)SIZE &&
	    pwrite(g->fd, zero, SIZE, 0) != (ssize_t)SIZE)
		goto fail;
	g->c = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
	if (g->c == MAP_FAILED) {
		g->c = NULL;
		goto fail;
	}
	return 0;
fail:
	close(g->fd);
	g->fd = -1;
	return E(INTERNAL);
}

void shmgen_close(struct shmgen *g)
{
	if (g->c)
		munmap(g->c, SIZE);
	if (g->fd >= 0)
		close(g->fd);
	g->c = NULL;
	g->fd = -1;
}

uint64_t shmgen_get(const struct shmgen *g, enum shmgen_counter i)
{
	return __atomic_load_n(&g->c[i], __ATOMIC_ACQUIRE) + 1;
}

void shmgen_bump(struct shmgen *g, enum shmgen_counter i)
{
	__atomic_add_fetch(&g->c[i], 1, __ATOMIC_RELEASE);
}
