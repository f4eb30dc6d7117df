/*
 * Functions Nexra code must not call: unbounded writes, hidden global state,
 * silent conversions. Included last by the files that include core/compat.h
 * (every .c file of ours), so a use is a compile error.
 */
#ifndef NEXRA_CORE_BANNED_H
#define NEXRA_CORE_BANNED_H

#define BANNED(f) sorry_##f##_is_banned

#undef strcpy
#define strcpy(a, b) BANNED(strcpy)
#undef strcat
#define strcat(a, b) BANNED(strcat)
#undef strncpy
#define strncpy(a, b, n) BANNED(strncpy)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(a, b) BANNED(strtok)
#undef atoi
#define atoi(a) BANNED(atoi)
#undef atol
#define atol(a) BANNED(atol)
#undef gmtime
#define gmtime(t) BANNED(gmtime)
#undef localtime
#define localtime(t) BANNED(localtime)
#undef gets
#define gets(a) BANNED(gets)

#endif
