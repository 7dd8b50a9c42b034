/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ELF through libelf/gelf (ELF32 or ELF64, either byte order). Flash holds what the
 * loadable segments carry in the file: PT_LOAD segments with p_filesz > 0, placed at
 * their physical address p_paddr (for .data that is its load address in flash, not
 * its RAM address). The p_memsz - p_filesz tail (.bss) is not flashed; segments
 * with nothing in the file are skipped. Sections are not consulted. */

#include <errno.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <string.h>

#include "image-internal.h"

static void elf_endp(Elf **e) {
        if (*e)
                elf_end(*e);
}

static const char *elf_error(void) {
        const char *m = elf_errmsg(-1);
        return m ?: "unknown libelf error";
}

int image_parse_elf(const uint8_t *data, size_t size, Image **ret, ImageError *err) {
        _cleanup_(elf_endp) Elf *elf = NULL;
        _cleanup_free_ char *copy = NULL;
        ImageBuilder b = {};
        GElf_Ehdr eh;
        size_t phnum, entsize, loaded = 0;
        int r;

        if (size < SELFMAG || memcmp(data, ELFMAG, SELFMAG) != 0)
                return image_error(err, -EINVAL, 0, 0, "ELF: not an ELF file (no \\177ELF magic)");
        if (size < EI_NIDENT)
                return image_error(err, -EINVAL, 0, size, "ELF: file truncated in the ELF header");

        if (elf_version(EV_CURRENT) == EV_NONE)
                return image_error(err, -EINVAL, 0, 0, "ELF: libelf is unusable: %s", elf_error());

        /* libelf wants a writable buffer and may keep pointers into it; give it a copy
         * it owns for the lifetime of the handle. */
        copy = malloc(size);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, data, size);

        elf = elf_memory(copy, size);
        if (!elf)
                return image_error(err, -EINVAL, 0, 0, "ELF: cannot open: %s", elf_error());
        if (elf_kind(elf) != ELF_K_ELF)
                return image_error(err, -EINVAL, 0, 0, "ELF: not an ELF object");
        if (!gelf_getehdr(elf, &eh))
                return image_error(err, -EINVAL, 0, 0, "ELF: cannot read the ELF header: %s", elf_error());
        /* Checked before libelf looks, so a truncated file gets a message that says so. */
        if (eh.e_phnum != PN_XNUM &&
            (eh.e_phoff > size || (uint64_t) eh.e_phnum * eh.e_phentsize > size - eh.e_phoff))
                return image_error(err, -EINVAL, 0, MIN((size_t) eh.e_phoff, size),
                                   "ELF: program header table at offset 0x%" PRIX64 " beyond end of file (0x%zX bytes)",
                                   (uint64_t) eh.e_phoff, size);
        if (elf_getphdrnum(elf, &phnum) < 0)
                return image_error(err, -EINVAL, 0, eh.e_phoff,
                                   "ELF: cannot read the program headers: %s", elf_error());
        if (phnum == 0)
                return image_error(err, -EINVAL, 0, 0, "ELF: no loadable segment (no program headers)");

        /* Again with the count libelf found (for PN_XNUM it comes from section 0) and
         * the size libelf reads per entry, whatever e_phentsize claims. */
        entsize = MAX((size_t) eh.e_phentsize, gelf_fsize(elf, ELF_T_PHDR, 1, EV_CURRENT));
        if (eh.e_phoff > size || entsize == 0 || phnum > (size - eh.e_phoff) / entsize)
                return image_error(err, -EINVAL, 0, eh.e_phoff,
                                   "ELF: program header table at offset 0x%" PRIX64 " beyond end of file",
                                   (uint64_t) eh.e_phoff);

        for (size_t i = 0; i < phnum; i++) {
                GElf_Phdr ph;

                if (!gelf_getphdr(elf, (int) i, &ph)) {
                        r = image_error(err, -EINVAL, 0, eh.e_phoff,
                                        "ELF: cannot read program header %zu: %s", i, elf_error());
                        goto fail;
                }
                if (ph.p_type != PT_LOAD || ph.p_filesz == 0)
                        continue;

                if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset) {
                        r = image_error(err, -EINVAL, 0, ph.p_offset > size ? size : ph.p_offset,
                                        "ELF: segment at offset 0x%" PRIX64 " (0x%" PRIX64 " bytes) beyond end of file (0x%zX bytes)",
                                        (uint64_t) ph.p_offset, (uint64_t) ph.p_filesz, size);
                        goto fail;
                }
                if (ph.p_paddr > UINT32_MAX || ph.p_filesz > UINT32_MAX - ph.p_paddr) {
                        r = image_error(err, -EFBIG, 0, ph.p_offset,
                                        "ELF: segment at 0x%" PRIX64 " (0x%" PRIX64 " bytes) lies beyond the 32-bit address space",
                                        (uint64_t) ph.p_paddr, (uint64_t) ph.p_filesz);
                        goto fail;
                }

                r = image_builder_add(&b, ph.p_paddr, data + ph.p_offset, ph.p_filesz, 0, ph.p_offset, err);
                if (r < 0)
                        goto fail;
                loaded++;
        }

        if (loaded == 0)
                return image_error(err, -EINVAL, 0, 0, "ELF: no loadable segment");
        if (eh.e_entry > UINT32_MAX) {
                r = image_error(err, -EFBIG, 0, 0, "ELF: entry point 0x%" PRIX64 " lies beyond 4 GiB",
                                (uint64_t) eh.e_entry);
                goto fail;
        }

        return image_builder_finalize(&b, IMAGE_FORMAT_ELF, (uint32_t) eh.e_entry, ret, err);

fail:
        image_builder_done(&b);
        return r;
}
