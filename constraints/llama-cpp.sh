# Sourced (with $here set to the checkout) by install.sh and tests/run.sh before pip installs the
# `export` extra. llama-cpp-python has only a source distribution on PyPI, so pip compiles llama.cpp:
# these flags build only what its Python binding loads (no tools, examples, tests, server,
# multimodal library, nor llama.cpp's common library: see llama-cpp.cmake) as portable CPU code.
# pip keeps the built wheel in its cache, so every later install takes seconds.
CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF"
CMAKE_ARGS="$CMAKE_ARGS -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_CCACHE=OFF"
CMAKE_ARGS="$CMAKE_ARGS -DCMAKE_PROJECT_llama.cpp_INCLUDE=$here/constraints/llama-cpp.cmake"
export CMAKE_ARGS
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}"
