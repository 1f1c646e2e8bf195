package expo.modules.kotlin

import android.os.Bundle

/**
 * Holds the modules of an app.
 */
class ModuleRegistry(private val appContext: AppContext) : Iterable<ModuleHolder> {
    private val registry = mutableMapOf<String, ModuleHolder>()

    // Register one module.
    fun register(module: Module) {
        registry[module.name] = ModuleHolder(module)
    }

    fun hasModule(name: String): Boolean = registry.containsKey(name)

    companion object {
        fun empty(context: AppContext) = ModuleRegistry(context)
    }

    inner class Cursor {
        fun next(): ModuleHolder? = null
    }
}

interface Module {
    val name: String
}

object Registry {
    fun all(): List<Module> = emptyList()
}

fun Bundle.toMap(): Map<String, Any?> {
    fun convert(value: Any?): Any? = value
    return keySet().associateWith { convert(get(it)) }
}
