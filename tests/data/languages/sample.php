<?php declare(strict_types=1);

namespace Monolog\Handler;

use Monolog\Logger;

/**
 * Stores to any stream resource.
 */
class StreamHandler extends AbstractProcessingHandler
{
    /** @var resource|null */
    protected $stream;

    /**
     * @param resource|string $stream
     */
    public function __construct($stream, int $level = Logger::DEBUG)
    {
        $this->stream = $stream;
    }

    // Writes one record.
    protected function write(array $record): void
    {
        $format = function ($r) { return (string) $r; };
        fwrite($this->stream, $format($record));
    }
}

interface FormattableHandlerInterface
{
    public function getFormatter(): FormatterInterface;
}

trait ProcessableHandlerTrait
{
    public function pushProcessor(callable $callback): HandlerInterface
    {
        return $this;
    }
}

function handler_name(string $class): string
{
    return basename(str_replace('\\', '/', $class));
}
