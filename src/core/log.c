/* JSON line logging; see log.h. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/jsonw.h"
#include "core/timefmt.h"
#include "core/banned.h"

void log_write(const char *json, size_t len)
{
	struct iovec iov[2] = {{(void *)json, len}, {"\n", 1}};
	ssize_t rc = writev(STDERR_FILENO, iov, 2);

	(void)rc; /* nowhere left to report a failed log write */
}

void log_msg(const char *level, const char *event, const char *fmt, ...)
{
	char detail[1024], ts[RFC3339_LEN];
	struct buf b;
	struct jsonw jw;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	time_rfc3339_ms(time_now_ms(), ts);
	buf_init(&b, 4096);
	jw_init(&jw, &b);
	jw_obj_open(&jw);
	jw_kstr(&jw, "ts", ts);
	jw_kstr(&jw, "level", level);
	jw_kstr(&jw, "event", event);
	jw_kstr(&jw, "detail", detail);
	jw_obj_close(&jw);
	if (!jw.rc)
		log_write(b.data, b.len);
	buf_release(&b);
}
