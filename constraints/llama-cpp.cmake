# Included into llama.cpp's own CMake project while pip builds llama-cpp-python from source (the
# `export` extra; see install.sh and tests/run.sh, which pass it in CMAKE_ARGS). llama-cpp-python
# forces llama.cpp's `common` library on, which its Python binding never loads: without it the
# build compiles about 75 files instead of 127.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama: build common utils library" FORCE)
