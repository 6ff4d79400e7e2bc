type Alias[T: int, *Ts, **P] = list[T]
def f[T](x: T) -> T:
    return x
class C[T = int](Base, metaclass=M):
    pass
match command:
    case [Point(x=0, y=0), *rest] | {"k": 1, **kw} if guard:
        pass
    case str() as s:
        pass
x = f"{a!r:>{width}} {b=}"
async def g():
    async with a as b, c:
        async for i in aiter():
            await h(*args, **kwargs)
    return [i async for i in z if i]
try:
    pass
except* ValueError as e:
    raise
del a[1:2:3], b.c
global_var: int = (yield)
lambda a, /, b=1, *c, d, **e: a
print(*a, sep="")
