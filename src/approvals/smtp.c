/* Sending email with libcurl's SMTP client; see smtp.h. */
#include "approvals/smtp.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/banned.h"

#define MESSAGE_MAX (256 * 1024)

static int needs_encoding(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return 1;
	return 0;
}

/* Subject header value: as is when printable ASCII, else one RFC 2047
 * encoded word (base64 of the UTF-8, control characters as spaces). */
static int add_subject(struct buf *b, const char *subject)
{
	char clean[512], enc[sodium_base64_ENCODED_LEN(512, sodium_base64_VARIANT_ORIGINAL)];
	size_t n = 0;

	if (!needs_encoding(subject))
		return buf_addf(b, "Subject: %s\r\n", subject);
	for (const unsigned char *p = (const unsigned char *)subject; *p && n < 200; p++)
		clean[n++] = *p < 0x20 || *p == 0x7f ? ' ' : (char)*p;
	sodium_bin2base64(enc, sizeof(enc), (const unsigned char *)clean, n,
			  sodium_base64_VARIANT_ORIGINAL);
	return buf_addf(b, "Subject: =?UTF-8?B?%s?=\r\n", enc);
}

int smtp_message(const char *from, const char *to, const char *subject, const char *text,
		 const char *message_id, int64_t now, struct buf *out)
{
	time_t t = (time_t)now;
	struct tm tm;
	char date[64];
	int rc;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	rc = buf_addf(out, "Date: %s\r\nFrom: <%s>\r\nTo: <%s>\r\nMessage-ID: <%s@nexra>\r\n", date,
		      from, to, message_id);
	if (!rc)
		rc = add_subject(out, subject);
	if (!rc)
		rc = buf_adds(out, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
				   "Content-Transfer-Encoding: 8bit\r\n\r\n");
	for (const char *p = text; !rc && *p; p++)
		rc = *p == '\n' ? buf_add(out, "\r\n", 2) : *p == '\r' ? 0 : buf_add(out, p, 1);
	return rc;
}

struct reader {
	const char *p;
	size_t left;
};

static size_t read_cb(char *dst, size_t size, size_t n, void *arg)
{
	struct reader *r = arg;
	size_t k = size * n < r->left ? size * n : r->left;

	memcpy(dst, r->p, k);
	r->p += k;
	r->left -= k;
	return k;
}

int smtp_send(const struct smtp_config *cfg, const char *to, const char *subject,
	      const char *text, const char *message_id, int64_t now, char *err, size_t errsz)
{
	char curl_err[CURL_ERROR_SIZE] = "", from[300], rcpt_addr[300];
	struct curl_slist *rcpt = NULL;
	struct reader rd;
	struct buf msg;
	CURL *h = NULL;
	CURLcode cc;
	int rc;

	if (!cfg->url[0]) {
		snprintf(err, errsz, "no SMTP server is configured (nexra serve --smtp-url)");
		return E(UNAVAILABLE);
	}
	buf_init(&msg, MESSAGE_MAX);
	rc = smtp_message(cfg->from, to, subject, text, message_id, now, &msg);
	snprintf(from, sizeof(from), "<%s>", cfg->from);
	snprintf(rcpt_addr, sizeof(rcpt_addr), "<%s>", to);
	if (!rc && (!(h = curl_easy_init()) || !(rcpt = curl_slist_append(NULL, rcpt_addr))))
		rc = E(INTERNAL);
	if (rc) {
		snprintf(err, errsz, "cannot build the message");
		goto out;
	}
	rd.p = msg.data;
	rd.left = msg.len;
	curl_easy_setopt(h, CURLOPT_URL, cfg->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(h, CURLOPT_READDATA, &rd);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg.len);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cfg->timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
	if (cfg->user[0]) {
		curl_easy_setopt(h, CURLOPT_USERNAME, cfg->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->password);
	}
	curl_easy_setopt(h, CURLOPT_USE_SSL,
			 cfg->user[0] && !cfg->dev ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		snprintf(err, errsz, "smtp: %s", curl_err[0] ? curl_err : curl_easy_strerror(cc));
		rc = E(UNAVAILABLE);
	}
out:
	curl_slist_free_all(rcpt);
	if (h)
		curl_easy_cleanup(h);
	buf_release(&msg);
	return rc;
}
