/* Shared-generation key cache; see keycache.h. */
#include "store/keycache.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/err.h"
#include "core/banned.h"

int keycache_init(struct keycache *kc, const char *path)
{
	uint64_t zero = 0;

	memset(kc, 0, sizeof(*kc));
	kc->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (kc->fd < 0)
		return E(INTERNAL);
	if (lseek(kc->fd, 0, SEEK_END) < (off_t)sizeof(uint64_t) &&
	    pwrite(kc->fd, &zero, sizeof(zero), 0) != (ssize_t)sizeof(zero))
		goto fail;
	kc->gen = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, kc->fd, 0);
	if (kc->gen == MAP_FAILED)
		goto fail;
	kc->slots = calloc(KEYCACHE_SLOTS, sizeof(*kc->slots));
	if (!kc->slots)
		goto fail;
	pthread_rwlock_init(&kc->lock, NULL);
	/* entries store gen + 1 so that 0 can mean "empty" */
	return 0;
fail:
	if (kc->gen && kc->gen != MAP_FAILED)
		munmap(kc->gen, sizeof(uint64_t));
	close(kc->fd);
	kc->gen = NULL;
	return E(INTERNAL);
}

void keycache_release(struct keycache *kc)
{
	if (!kc->slots)
		return;
	free(kc->slots);
	kc->slots = NULL;
	munmap(kc->gen, sizeof(uint64_t));
	close(kc->fd);
	pthread_rwlock_destroy(&kc->lock);
}

uint64_t keycache_gen(struct keycache *kc)
{
	return __atomic_load_n(kc->gen, __ATOMIC_ACQUIRE) + 1;
}

static unsigned slot_of(const char *lookup)
{
	unsigned h = 2166136261u;

	for (; *lookup; lookup++)
		h = (h ^ (unsigned char)*lookup) * 16777619u;
	return h % KEYCACHE_SLOTS;
}

int keycache_get(struct keycache *kc, const char *lookup, struct key_auth *out)
{
	struct keycache_slot *s = &kc->slots[slot_of(lookup)];
	uint64_t now = keycache_gen(kc);
	int hit;

	pthread_rwlock_rdlock(&kc->lock);
	hit = s->gen == now && !strcmp(s->ka.key.lookup, lookup);
	if (hit)
		*out = s->ka;
	pthread_rwlock_unlock(&kc->lock);
	return hit;
}

void keycache_put(struct keycache *kc, uint64_t gen, const struct key_auth *ka)
{
	struct keycache_slot *s = &kc->slots[slot_of(ka->key.lookup)];

	pthread_rwlock_wrlock(&kc->lock);
	s->gen = gen;
	s->ka = *ka;
	pthread_rwlock_unlock(&kc->lock);
}

void keycache_bump(struct keycache *kc)
{
	__atomic_add_fetch(kc->gen, 1, __ATOMIC_RELEASE);
}
