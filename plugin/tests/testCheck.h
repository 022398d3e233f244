/*
 * The part of the test helpers that needs neither TensorRT nor a plugin header, shared by every test driver
 * (capiTest.cpp, and through testSupport.h conformance.cpp and trtRuntimeTest.cpp): the CUDA_OK guard and the
 * passed / failed tally behind each driver's check(). Header-only; test code, not part of any library.
 */
#ifndef SWISH_TEST_CHECK_H
#define SWISH_TEST_CHECK_H

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#define CUDA_OK(call)                                                                                                  \
    do                                                                                                                 \
    {                                                                                                                  \
        cudaError_t const status_ = (call);                                                                            \
        if (status_ != cudaSuccess)                                                                                    \
        {                                                                                                              \
            std::printf("FATAL: %s: %s (%s:%d)\n", #call, cudaGetErrorString(status_), __FILE__, __LINE__);            \
            std::exit(2);                                                                                              \
        }                                                                                                              \
    } while (0)

namespace swishtest
{

//! Counts the checks of one driver; a failed one prints "FAIL: <what>". Safe to call from several threads.
class Tally
{
public:
    void check(bool ok, std::string const& what)
    {
        std::lock_guard<std::mutex> lock(mMutex);
        if (ok)
        {
            ++passed;
        }
        else
        {
            ++failed;
            std::printf("FAIL: %s\n", what.c_str());
        }
    }
    int passed{0};
    int failed{0};

private:
    std::mutex mMutex;
};

} // namespace swishtest

#endif // SWISH_TEST_CHECK_H
